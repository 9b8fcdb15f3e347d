"""DeploymentClient against a recording HTTP server that answers like a Convex deployment.

This checks the exact requests the client sends (headers, bodies, filters) and how it reads
every kind of answer (200/560 function errors, {code,message} errors, junk, silence). The
client against the real emulator is in test_client_emulator.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from console import values
from console.client import (
    UNDEFINED_PLACEHOLDER,
    ApiError,
    AuthError,
    BadResponse,
    DeploymentClient,
    FilterClause,
    FunctionError,
    IndexEq,
    IndexFilter,
    IndexRange,
    Unreachable,
    build_filter_expression,
    decode_filters,
    encode_filters,
)
from console.connection import Connection

ADMIN_KEY = "convex-console|00112233445566778899aabbccddeeff"


class Recorder:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: dict[str, object] = {}  # function path -> value (python) or Response

    def app(self) -> Starlette:
        async def function(request: Request) -> Response:
            body = await request.json()
            self.requests.append({"route": request.url.path, "headers": dict(request.headers), "body": body})
            answer = self.answers.get(body["path"])
            if isinstance(answer, Response):
                return answer
            if answer == "SLOW":
                await asyncio.sleep(1)
            return JSONResponse({"status": "success", "value": values.encode(answer), "logLines": ["[LOG] hi"]})

        async def other(request: Request) -> Response:
            raw = await request.body()
            self.requests.append({"route": request.url.path, "headers": dict(request.headers),
                                  "body": json.loads(raw) if raw else None, "query": dict(request.query_params)})
            answer = self.answers.get(request.url.path)
            if isinstance(answer, Response):
                return answer
            return JSONResponse(answer) if answer is not None else Response(status_code=200)

        routes = [Route(f"/api/{kind}", function, methods=["POST"]) for kind in ("query", "mutation", "action", "function")]
        routes.append(Route("/instance_name", lambda r: PlainTextResponse("fake-instance")))
        routes.append(Route("/{rest:path}", other, methods=["GET", "POST"]))
        return Starlette(routes=routes)


@pytest.fixture(scope="module")
def server():
    recorder = Recorder()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(recorder.app(), log_level="error", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert uv.started
    recorder.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    yield recorder
    uv.should_exit = True
    thread.join(5)


@pytest.fixture
def rec(server):
    server.requests.clear()
    server.answers.clear()
    return server


def make_client(rec, **options) -> DeploymentClient:
    return DeploymentClient(Connection.create(rec.url, admin_key=ADMIN_KEY), **options)


async def test_function_call_sends_encoded_args_and_decodes_value(rec):
    rec.answers["m:f"] = {"n": 2**40, "b": b"\x00\xff", "f": 1.5, "nan": float("inf")}
    async with make_client(rec) as client:
        result = await client.run_function("mutation", "m:f", {"n": 7, "raw": b"x"})
    assert result.ok and result.value == {"n": 2**40, "b": b"\x00\xff", "f": 1.5, "nan": float("inf")}
    assert result.log_lines == ["[LOG] hi"]
    request = rec.requests[0]
    assert request["route"] == "/api/mutation"
    assert request["body"] == {"path": "m:f", "args": {"n": {"$integer": "BwAAAAAAAAA="}, "raw": {"$bytes": "eA=="}},
                               "format": "convex_encoded_json"}
    assert request["headers"]["convex-client"].startswith("convex-console-")
    assert request["headers"]["authorization"] == f"Convex {ADMIN_KEY}"


@pytest.mark.parametrize("status", [200, 560])
async def test_function_error_with_convex_error_data(rec, status):
    rec.answers["m:bad"] = JSONResponse(
        {"status": "error", "errorMessage": "[Request ID: 1] Server Error\nUncaught ConvexError: nope",
         "errorData": {"code": {"$integer": "KgAAAAAAAAA="}}, "logLines": ["[ERROR] x"]},
        status_code=status,
    )
    async with make_client(rec) as client:
        with pytest.raises(FunctionError) as info:
            await client.query("m:bad", {})
        result = await client.run_function("query", "m:bad")
    assert info.value.data == {"code": 42}
    assert "nope" in info.value.message and info.value.log_lines == ["[ERROR] x"]
    assert info.value.summary == "Uncaught ConvexError: nope" and info.value.request_id == "1"
    assert not result.ok and result.error_data == {"code": 42}


@pytest.mark.parametrize(
    "status,error_type,code",
    [(403, AuthError, "BadDeployKey"), (401, AuthError, "Unauthenticated"), (400, ApiError, "BadConvexFunctionIdentifier"), (503, ApiError, "Overloaded")],
)
async def test_http_errors_carry_code_and_message(rec, status, error_type, code):
    rec.answers["m:x"] = JSONResponse({"code": code, "message": "long message"}, status_code=status)
    async with make_client(rec) as client:
        with pytest.raises(error_type) as info:
            await client.query("m:x")
    assert (info.value.status, info.value.code, info.value.message) == (status, code, "long message")


async def test_non_convex_answers_are_bad_responses(rec):
    rec.answers["m:html"] = Response("<html>hello</html>", media_type="text/html")
    rec.answers["m:shape"] = JSONResponse({"hello": "world"})
    rec.answers["/api/check_admin_key"] = Response("<html>404</html>", status_code=404, media_type="text/html")
    async with make_client(rec) as client:
        with pytest.raises(BadResponse, match="non-JSON"):
            await client.query("m:html")
        with pytest.raises(BadResponse, match="no function status"):
            await client.query("m:shape")
        with pytest.raises(BadResponse, match="404"):
            await client.check_admin_key()


async def test_unreachable_port_fails_fast():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    started = time.monotonic()
    async with DeploymentClient(Connection.create(f"http://127.0.0.1:{port}")) as client:
        with pytest.raises(Unreachable) as info:
            await client.instance_name()
    assert time.monotonic() - started < 2
    assert "refused" in info.value.reason and info.value.url.endswith("/instance_name")


async def test_timeout_is_unreachable(rec):
    rec.answers["m:slow"] = "SLOW"
    async with make_client(rec, timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(Unreachable, match="timed out"):
            await client.query("m:slow")
    assert time.monotonic() - started < 2


async def test_auth_views_change_only_the_header(rec):
    identity = {"subject": "user-1", "issuer": "https://issuer.example", "tokenIdentifier": "https://issuer.example|user-1", "name": "Zoë"}
    rec.answers["m:f"] = None
    async with make_client(rec) as client:
        await client.with_identity(identity).query("m:f")
        await client.with_token(" header.payload.sig ").query("m:f")
        await client.without_auth().query("m:f")
        await client.with_identity(identity).tables(counts=False)  # system calls use the plain key
        assert not client.closed
    headers = [r["headers"].get("authorization") for r in rec.requests]
    key, encoded = headers[0].removeprefix("Convex ").split(":")
    assert key == ADMIN_KEY and json.loads(base64.b64decode(encoded)) == identity
    assert headers[1] == "Bearer header.payload.sig"
    assert headers[2] is None
    assert headers[3] == f"Convex {ADMIN_KEY}"


async def test_table_page_sends_dashboard_filters(rec):
    rec.answers["_system/frontend/paginatedTableDocuments"] = {"page": [{"_id": "a", "n": 1}], "isDone": False, "continueCursor": "c1"}
    filters = [FilterClause("status", "eq", "active"), FilterClause("age", "gte", 18), FilterClause("nick", "type", "unset", enabled=False),
               FilterClause("gone", "eq", values.UNDEFINED), FilterClause("big", "lt", 5)]
    index = IndexFilter("by_author", (IndexEq("alice"), IndexRange("gt", 1.0, "lte", 9.0)))
    async with make_client(rec) as client:
        page = await client.table_page("posts", filters=filters, index=index, order="asc", cursor="c0", num_items=50)
        plain = await client.table_page("posts")
    assert page.items == [{"_id": "a", "n": 1.0}] and page.continue_cursor == "c1" and not page.is_done
    args = rec.requests[0]["body"]["args"]
    assert args["paginationOpts"] == {"numItems": 50, "cursor": "c0"}  # a float64 on the wire, not $integer
    assert args["table"] == "posts"
    assert decode_filters(args["filters"]) == {
        "clauses": [
            {"field": "status", "op": "eq", "value": "active", "enabled": True},
            {"field": "age", "op": "gte", "value": {"$integer": "EgAAAAAAAAA="}, "enabled": True},
            {"field": "nick", "op": "type", "value": "unset", "enabled": False},
            {"field": "gone", "op": "eq", "value": UNDEFINED_PLACEHOLDER, "enabled": True},
            {"field": "big", "op": "lt", "value": {"$integer": "BQAAAAAAAAA="}, "enabled": True},
        ],
        "order": "asc",
        "index": {"name": "by_author", "clauses": [
            {"type": "indexEq", "enabled": True, "value": "alice"},
            {"type": "indexRange", "enabled": True, "lowerOp": "gt", "lowerValue": 1.0, "upperOp": "lte", "upperValue": 9.0}]},
    }
    assert "=" not in args["filters"] and "+" not in args["filters"] and "/" not in args["filters"]
    assert rec.requests[1]["body"]["args"]["filters"] is None and plain.items


def test_filter_encoding_matches_the_dashboard_example():
    # QUERIES §3.3: the exact string js-base64 encodeURI produces for this expression.
    expression = json.loads(
        '{"clauses":[{"id":"0.123","field":"status","op":"eq","value":"active","enabled":true},'
        '{"field":"age","op":"gte","value":18,"enabled":true},{"field":"nickname","op":"type","value":"unset","enabled":false}],'
        '"order":"asc","index":{"name":"by_creation_time","clauses":[{"type":"indexRange","enabled":false,"lowerOp":"gte","lowerValue":1700000000000}]}}'
    )
    encoded = encode_filters(expression)
    assert encoded == (
        "eyJjbGF1c2VzIjpbeyJpZCI6IjAuMTIzIiwiZmllbGQiOiJzdGF0dXMiLCJvcCI6ImVxIiwidmFsdWUiOiJhY3RpdmUiLCJlbmFi"
        "bGVkIjp0cnVlfSx7ImZpZWxkIjoiYWdlIiwib3AiOiJndGUiLCJ2YWx1ZSI6MTgsImVuYWJsZWQiOnRydWV9LHsiZmllbGQiOiJu"
        "aWNrbmFtZSIsIm9wIjoidHlwZSIsInZhbHVlIjoidW5zZXQiLCJlbmFibGVkIjpmYWxzZX1dLCJvcmRlciI6ImFzYyIsImluZGV4"
        "Ijp7Im5hbWUiOiJieV9jcmVhdGlvbl90aW1lIiwiY2xhdXNlcyI6W3sidHlwZSI6ImluZGV4UmFuZ2UiLCJlbmFibGVkIjpmYWxz"
        "ZSwibG93ZXJPcCI6Imd0ZSIsImxvd2VyVmFsdWUiOjE3MDAwMDAwMDAwMDB9XX19"
    )
    assert decode_filters(encoded) == expression
    assert build_filter_expression([], None, "desc") is None
    assert build_filter_expression([], None, "asc") == {"clauses": [], "order": "asc"}
    with pytest.raises(ValueError, match="operator"):
        FilterClause("a", "like", "x")
    with pytest.raises(ValueError, match="type"):
        FilterClause("a", "type", "text")


async def test_filter_problems_come_back_typed(rec):
    rec.answers["_system/frontend/paginatedTableDocuments"] = {"page": [{"filter": -1, "error": "Index by_x not found."}], "isDone": True, "continueCursor": ""}
    async with make_client(rec) as client:
        page = await client.table_page("posts", index=IndexFilter("by_x"))
    assert page.items == [] and page.filter_problems[0].filter == -1 and "by_x" in page.filter_problems[0].error


async def test_mutation_wrappers_send_dashboard_shapes(rec):
    for name in ("addDocument", "patchDocumentsFields", "replaceDocument", "deleteDocuments"):
        rec.answers[f"_system/frontend/{name}"] = {"success": True}
    rec.answers["_system/frontend/deleteDocuments"] = {"success": False, "error": "Nope"}
    async with make_client(rec) as client:
        await client.add_documents("posts", [{"title": "a", "n": 1}])
        await client.patch_fields("posts", ["id1"], {"title": "b", "old": values.UNDEFINED})
        await client.replace_document("id1", {"_id": "id1", "_creationTime": 1.0, "title": "c"})
        with pytest.raises(FunctionError, match="Nope"):
            await client.delete_documents([("id1", "posts")])
        with pytest.raises(ValueError):
            await client.patch_fields("posts", [], {"a": 1})  # would patch the whole table
    bodies = [r["body"] for r in rec.requests]
    assert [b["path"] for b in bodies] == ["_system/frontend/addDocument", "_system/frontend/patchDocumentsFields",
                                           "_system/frontend/replaceDocument", "_system/frontend/deleteDocuments"]
    assert bodies[0]["args"] == {"table": "posts", "documents": [{"n": {"$integer": "AQAAAAAAAAA="}, "title": "a"}]}
    assert bodies[1]["args"] == {"table": "posts", "ids": ["id1"], "fields": {"old": UNDEFINED_PLACEHOLDER, "title": "b"}}
    assert bodies[2]["args"] == {"id": "id1", "document": {"title": "c"}}
    assert bodies[3]["args"] == {"toDelete": [{"id": "id1", "tableName": "posts"}]}


async def test_http_endpoints(rec):
    rec.answers["/api/check_admin_key"] = {"success": True, "allowedOps": ["ViewData"], "isReadOnly": True}
    rec.answers["/api/query_ts"] = {"ts": values.ts_to_wire(1_700_000_000_000_000_000)}
    rec.answers["/api/list_environment_variables"] = {"environmentVariables": {"A": "1"}}
    rec.answers["/api/stream_function_logs"] = {"entries": [{"kind": "Completion"}], "newCursor": 17}
    async with make_client(rec) as client:
        assert await client.instance_name() == "fake-instance"
        check = await client.check_admin_key()
        assert check.is_read_only and check.allowed_ops == ["ViewData"]
        assert await client.query_ts() == 1_700_000_000_000_000_000
        assert await client.list_env_vars() == {"A": "1"}
        await client.update_env_vars({"A": "2", "B": None})
        await client.cancel_job("job1")
        batch = await client.stream_function_logs(5)
    assert batch.new_cursor == 17 and batch.entries == [{"kind": "Completion"}]
    by_route = {r["route"]: r for r in rec.requests}
    assert by_route["/api/update_environment_variables"]["body"] == {"changes": [{"name": "A", "value": "2"}, {"name": "B"}]}
    assert by_route["/api/cancel_job"]["body"] == {"id": "job1", "componentId": None}
    assert by_route["/api/stream_function_logs"]["query"] == {"cursor": "5"}
    assert all(r["headers"].get("authorization") == f"Convex {ADMIN_KEY}" for r in rec.requests if r["route"] != "/instance_name")


async def test_560_with_an_api_error_body(rec):
    rec.answers["m:x"] = JSONResponse({"code": "Overloaded", "message": "try later"}, status_code=560)
    async with make_client(rec) as client:
        with pytest.raises(ApiError) as info:
            await client.query("m:x")
    assert (info.value.status, info.value.code) == (560, "Overloaded")


async def test_verify_when_instance_name_is_not_served(rec):
    from console.discovery import verify

    connection = Connection.create(rec.url + "/proxy", admin_key=ADMIN_KEY)  # /proxy/instance_name -> 200, empty
    junk = await verify(connection)
    assert junk.status == "not_convex"  # an empty check_admin_key answer proves nothing
    rec.answers["/proxy/api/check_admin_key"] = {"success": True, "allowedOps": [], "isReadOnly": False}
    result = await verify(connection)
    assert result.status == "ok" and result.instance_name is None
    rec.answers["/proxy/api/check_admin_key"] = JSONResponse({"code": "BadAdminKey", "message": "no"}, status_code=403)
    refused = await verify(connection)
    assert refused.status == "bad_key" and "0011223344" not in refused.message
