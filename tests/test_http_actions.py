"""HTTP actions in the emulator: router rules (as convex/server's httpRouter), the site port and
/http/ on the cloud port, streamed bodies, the 20 MiB limit, errors, logging; environment
variables (round trip, validation, persistence, subscription invalidation)."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.emulator.functions import http_action
from console.emulator.http_router import MAX_BODY_BYTES, HttpRouter, Request, Response, RouteError

sys.path.insert(0, str(Path(__file__).parent / "peers"))
APP = "http_app"


@http_action
def handler_a(ctx, request):
    return Response("a")


@http_action
def handler_b(ctx, request):
    return Response("b")


# --- the router, headless ------------------------------------------------------------------


def test_exact_path_beats_prefix_and_longest_prefix_wins():
    router = HttpRouter()
    router.route(path="/files/special", method="GET", handler=handler_a)
    router.route(path_prefix="/files/a/", method="GET", handler=handler_b)
    router.route(path_prefix="/files/", method="GET", handler=handler_a)
    assert router.lookup("/files/special", "GET")[1:] == ("GET", "/files/special")
    assert router.lookup("/files/a/b", "GET")[2] == "/files/a/*"
    assert router.lookup("/files/a/b", "GET")[0] is handler_b
    assert router.lookup("/files/x", "GET")[2] == "/files/*"
    assert router.lookup("/files", "GET") is None  # a prefix needs its trailing slash
    assert router.lookup("/files/x", "POST") is None


def test_head_is_served_by_get():
    router = HttpRouter()
    router.route(path_prefix="/files/", method="GET", handler=handler_a)
    assert router.lookup("/files/a/b", "HEAD")[1:] == ("GET", "/files/*")


def test_get_routes_lists_exact_sorted_then_prefixes():
    router = HttpRouter()
    router.route(path="/hello", method="POST", handler=handler_a)
    router.route(path_prefix="/files/", method="GET", handler=handler_a)
    router.route(path="/hello", method="GET", handler=handler_b)
    router.route(path="/a", method="PUT", handler=handler_b)
    assert [(p, m) for p, m, _ in router.get_routes()] == [
        ("/a", "PUT"), ("/hello", "GET"), ("/hello", "POST"), ("/files/*", "GET")]
    assert router.route_specs()[-1] == {"method": "GET", "path": "/files/*"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"path": "/x", "method": "TRACE"}, "'TRACE' is not an allowed HTTP method (like GET, POST, PUT etc.)"),
        ({"path": "x", "method": "GET"}, "path 'x' does not start with a /"),
        ({"path_prefix": "x/", "method": "GET"}, "path 'x/' does not start with a /"),
        ({"path_prefix": "/x", "method": "GET"}, "pathPrefix /x must end with a /"),
        ({"path": "/x", "path_prefix": "/x/", "method": "GET"}, "route takes either path or pathPrefix, not both"),
        ({"method": "GET"}, "route requires path or pathPrefix"),
        ({"path": "/x"}, "route requires method"),
    ],
)
def test_route_errors_use_convex_messages(kwargs, message):
    router = HttpRouter()
    with pytest.raises(RouteError) as caught:
        router.route(handler=handler_a, **kwargs)
    assert str(caught.value) == message


def test_duplicates_and_shadowing_are_refused():
    router = HttpRouter()
    router.route(path="/x", method="GET", handler=handler_a)
    with pytest.raises(RouteError, match="Path '/x' for method GET already in use"):
        router.route(path="/x", method="GET", handler=handler_b)
    router.route(path_prefix="/p/", method="GET", handler=handler_a)
    with pytest.raises(RouteError, match="GET pathPrefix /p/ is shadowed by pathPrefix /p/"):
        router.route(path_prefix="/p/", method="GET", handler=handler_b)
    with pytest.raises(RouteError, match="GET pathPrefix /p/q/ is shadowed by pathPrefix /p/"):
        router.route(path_prefix="/p/q/", method="GET", handler=handler_b)
    with pytest.raises(RouteError, match="GET path /p/z is shadowed by pathPrefix /p/"):
        router.route(path="/p/z", method="GET", handler=handler_b)
    router.route(path_prefix="/p/", method="POST", handler=handler_b)  # another method is fine
    with pytest.raises(RouteError, match="route requires handler"):
        router.route(path="/y", method="GET", handler=None)


segment = st.text(alphabet="abc", min_size=1, max_size=3)


@settings(max_examples=60, deadline=None)
@given(prefixes=st.lists(st.lists(segment, min_size=1, max_size=3), min_size=1, max_size=5),
       path=st.lists(segment, min_size=1, max_size=5))
def test_lookup_picks_the_longest_registered_prefix(prefixes, path):
    router = HttpRouter()
    registered = []
    for parts in sorted(prefixes, key=len, reverse=True):  # longer first, as Convex requires
        prefix = "/" + "/".join(parts) + "/"
        try:
            router.route(path_prefix=prefix, method="GET", handler=handler_a)
            registered.append(prefix)
        except RouteError:
            pass
    full = "/" + "/".join(path)
    matching = [p for p in registered if full.startswith(p)]
    found = router.lookup(full, "GET")
    if not matching:
        assert found is None
    else:
        assert found[2] == max(matching, key=len) + "*"


def test_request_body_api_streams_once():
    request = Request("POST", "http://x/y?a=1", [("Content-Type", "application/json")], iter([b'{"a"', b": 1}"]))
    assert request.headers.get("content-type") == "application/json"
    assert request.query == {"a": "1"} and request.path == "/y"
    assert request.json() == {"a": 1}
    assert request.text() == '{"a": 1}'  # cached after the first read
    streamed = Request("POST", "http://x/", [], iter([b"ab", b"cd"]))
    assert list(streamed.stream()) == [b"ab", b"cd"]
    with pytest.raises(RuntimeError, match="Body already used"):
        streamed.body()
    with pytest.raises(ValueError, match="Unexpected end of JSON input"):
        Request("POST", "http://x/", [], b"").json()


def test_response_shapes():
    assert Response("hi").headers["content-type"] == "text/plain;charset=UTF-8"
    assert Response.json({"a": 1}, status=201).body == b'{"a":1}'
    assert Response.json({}, headers={"Content-Type": "application/vnd+json"}).headers["content-type"] == "application/vnd+json"
    with pytest.raises(ValueError, match="not in the range 200 to 599"):
        Response(None, status=99)


# --- served by the emulator -----------------------------------------------------------------


@pytest.fixture
def served(emulator_factory):
    return emulator_factory(app=APP)


def test_site_port_and_cloud_http_prefix_serve_the_router(served):
    with httpx.Client() as client:
        site = client.post(served.site_url + "/echo?x=1", content=b"hello", headers={"Content-Type": "text/plain"})
        cloud = client.post(served.url + "/http/echo?x=1", content=b"hello", headers={"Content-Type": "text/plain"})
        for response in (site, cloud):
            assert response.status_code == 200
            assert response.content == b"hello"
            assert response.headers["x-method"] == "POST"
            assert response.headers["x-url"] == served.site_url + "/echo?x=1"
        head = client.head(served.site_url + "/files/a/b")
        assert head.status_code == 200 and head.content == b"" and head.headers["x-method"] == "HEAD"
        for base in (served.site_url, served.url + "/http"):
            missing = client.get(base + "/nope/x")
            assert missing.status_code == 404
            assert missing.text == "No HttpAction routed for /nope/x"
        wrong_method = client.delete(served.site_url + "/echo")
        assert wrong_method.status_code == 404 and wrong_method.text == "No HttpAction routed for /echo"


def test_fast_self_contained_actions_move_to_the_event_loop(served, monkeypatch):
    from console.emulator import runtime

    monkeypatch.setattr(runtime, "INLINE_QUERY_SECONDS", 1.0)  # "fast" even on a loaded machine
    runs = runtime.INLINE_AFTER_FAST_RUNS + 3
    with httpx.Client(base_url=served.site_url) as client:
        plain = [client.get("/thread").text for _ in range(runs)]
        reaching_out = [client.get("/thread-query").text for _ in range(runs)]
        with_body = [client.post("/thread", content=b"x").text for _ in range(runs)]
    on_threads = [name.startswith("convex-http") for name in plain]
    assert on_threads == [True] * runtime.INLINE_AFTER_FAST_RUNS + [False] * 3, plain
    assert all(name.startswith("convex-http") for name in reaching_out + with_body), reaching_out + with_body

    monkeypatch.setattr(runtime, "INLINE_QUERY_SECONDS", 0.0)  # one slow run sends it back to the threads
    with httpx.Client(base_url=served.site_url) as client:
        assert not client.get("/thread").text.startswith("convex-http")  # ran inline, noted as slow
        assert client.get("/thread").text.startswith("convex-http")


def test_handler_exception_is_a_500_with_convex_body_and_is_logged(served):
    with httpx.Client() as client:
        failed = client.get(served.site_url + "/boom")
        assert failed.status_code == 500
        body = failed.json()
        assert body["code"].startswith("[Request ID: ") and body["code"].endswith("] Server Error: Uncaught Error: boom")
        assert body["trace"].startswith("Uncaught Error: boom\n    at boom (")
        data = client.get(served.site_url + "/convex-error").json()
        assert data["data"] == {"code": "NOPE"}
        wrong = client.get(served.site_url + "/wrong").json()
        assert "returned dict, not a Response" in wrong["code"]
        deep = client.get(served.site_url + "/files/deep/x")  # the longest prefix: boom
        assert deep.status_code == 500
    entries, _ = served.deployment.executions.since(0)
    boom = [e for e in entries if e.identifier == "GET /boom" and e.kind == "Completion"]
    assert boom and boom[0].udf_type == "http_action" and boom[0].success is False
    assert any("about to fail" in line.pretty() for line in boom[0].log_lines)
    assert any(e.identifier == "GET /files/deep/*" for e in entries)


def test_request_body_is_streamed_in_chunks(served):
    def chunks():
        for _ in range(40):
            yield b"x" * 65536

    with httpx.Client(timeout=30) as client:
        result = client.post(served.site_url + "/count", content=chunks()).json()
    assert result["bytes"] == 40 * 65536
    assert result["chunks"] > 1  # the handler saw the body as it arrived, not one buffer


def test_body_limit_is_20_mib_declared_or_streamed(served):
    with httpx.Client(timeout=60) as client:
        exact = client.post(served.site_url + "/count", content=b"a" * MAX_BODY_BYTES)
        assert exact.status_code == 200 and exact.json()["bytes"] == MAX_BODY_BYTES
        declared = client.post(served.site_url + "/count", content=b"a" * (MAX_BODY_BYTES + 1))
        assert declared.status_code == 413
        assert "limit for HTTP actions" in declared.text

        def streamed():
            for _ in range(21):
                yield b"b" * (1 << 20)

        chunked = client.post(served.site_url + "/count", content=streamed())
        assert chunked.status_code == 413


def test_bearer_problems_reach_the_handler_as_an_auth_error(served):
    with httpx.Client() as client:
        anonymous = client.get(served.site_url + "/whoami").json()
        assert anonymous == {"identity": None}
        bad = client.get(served.site_url + "/whoami", headers={"Authorization": "Bearer not-a-jwt"})
        assert bad.status_code == 401 and "Could not parse JWT payload" in bad.json()["error"]


# --- environment variables -------------------------------------------------------------------


def admin(emulator) -> dict:
    return {"Authorization": f"Convex {emulator.admin_key}"}


def test_env_var_round_trip_validation_and_function_access(served):
    with httpx.Client(base_url=served.url, headers=admin(served)) as client:
        assert client.get("/api/list_environment_variables").json() == {"environmentVariables": {}}
        ok = client.post("/api/update_environment_variables",
                         json={"changes": [{"name": "API_KEY", "value": "s3cret"}, {"name": "B", "value": "2"}]})
        assert ok.status_code == 200
        client.post("/api/v1/update_environment_variables", json={"changes": [{"name": "B"}, {"name": "NEVER"}]})
        assert client.get("/api/v1/list_environment_variables").json() == {"environmentVariables": {"API_KEY": "s3cret"}}
        bad = client.post("/api/update_environment_variables", json={"changes": [{"name": "1X", "value": "v"}]})
        assert bad.status_code == 400 and bad.json()["code"] == "EnvironmentVariableNameInvalid"
        long = client.post("/api/update_environment_variables", json={"changes": [{"name": "A" * 41, "value": "v"}]})
        assert long.json()["code"] == "EnvironmentVariableNameTooLong"
        big = client.post("/api/update_environment_variables", json={"changes": [{"name": "BIG", "value": "v" * 8193}]})
        assert big.json()["code"] == "EnvironmentVariableValueTooLarge"
        dup = client.post("/api/update_environment_variables",
                          json={"changes": [{"name": "X", "value": "1"}, {"name": "X"}]})
        assert dup.json()["code"] == "EnvVarNameNotUnique"
        builtin = client.post("/api/update_environment_variables",
                              json={"changes": [{"name": "CONVEX_SITE_URL", "value": "x"}]})
        assert builtin.json()["code"] == "EnvVarNameForbidden"
        anonymous = httpx.get(served.url + "/api/list_environment_variables")
        assert anonymous.status_code in (401, 403)
        rows = client.post("/api/query", json={"path": "_system/cli/queryEnvironmentVariables", "args": {}}).json()
        assert [(r["name"], r["value"]) for r in rows["value"]] == [("API_KEY", "s3cret")]
        assert {"_id", "_creationTime"} <= set(rows["value"][0])
        one = client.post("/api/query", json={"path": "_system/cli/queryEnvironmentVariables:get", "args": {"name": "API_KEY"}})
        assert one.json()["value"] == {"name": "API_KEY", "value": "s3cret"}
        front = client.post("/api/query", json={"path": "_system/frontend/listEnvironmentVariables", "args": {}})
        assert [r["name"] for r in front.json()["value"]] == ["API_KEY"]
        in_query = client.post("/api/query", json={"path": "env:read", "args": {"name": "API_KEY"}}).json()
        assert in_query["value"] == "s3cret"
        builtin_url = client.post("/api/query", json={"path": "env:read", "args": {"name": "CONVEX_SITE_URL"}}).json()
        assert builtin_url["value"] == served.site_url
    in_action = httpx.get(served.site_url + "/env", params={"name": "API_KEY"}).json()
    assert in_action == {"value": "s3cret"}


def test_env_vars_persist_in_the_data_dir(emulator_factory, tmp_path):
    first = emulator_factory(app=APP, data_dir=tmp_path / "data")
    httpx.post(first.url + "/api/update_environment_variables", headers=admin(first),
               json={"changes": [{"name": "KEPT", "value": "yes"}]}).raise_for_status()
    first.stop()
    second = emulator_factory(app=APP, data_dir=tmp_path / "data")
    listed = httpx.get(second.url + "/api/list_environment_variables", headers=admin(second)).json()
    assert listed == {"environmentVariables": {"KEPT": "yes"}}


async def test_env_change_invalidates_subscriptions(served):
    from console.sync import AdminAuth, SyncClient

    async with SyncClient(served.url, AdminAuth(served.admin_key)) as sync:
        subscription = sync.subscribe("env:read", {"name": "FLAG"})
        first = await subscription.next(timeout=10)
        assert first.value is None
        async with httpx.AsyncClient() as client:
            response = await client.post(served.url + "/api/update_environment_variables", headers=admin(served),
                                         json={"changes": [{"name": "FLAG", "value": "on"}]})
            assert response.status_code == 200
        updated = await subscription.next(timeout=10)
        assert updated.value == "on"
        assert updated.ts > first.ts
