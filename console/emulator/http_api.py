"""The public HTTP function API and the admin HTTP endpoints on the cloud port (PROTOCOL §1, §3).

Function errors are HTTP 200 `{status:"error", ...}`; everything else that fails is
`{code, message}` with Convex's status code (`ApiError`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import secrets
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from console import values
from console.emulator.system import shapes
from console.emulator.errors import ApiError
from console.emulator.executions import stream_response

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = (1 << 24) + 2000  # MAX_BACKEND_PUBLIC_API_REQUEST_SIZE
LOG_POLL_TIMEOUT_S = 60.0
_DRAIN_LIMIT = 4 * MAX_REQUEST_BYTES  # past this, stop reading and let the connection close
_HIDDEN_INDEXES = ("by_id", "by_creation_time")

CORS_METHODS = "GET,POST,OPTIONS,PATCH,DELETE,PUT"


# --- CORS (tower-http CorsLayer as configured by Convex's `cors()`) ---------------------


class CorsMiddleware:
    """Mirror Origin and requested headers, allow credentials; answer preflights."""

    def __init__(self, app):
        self.app = app

    def __getattr__(self, name):  # `state`, `routes`, ... of the wrapped Starlette app
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/http/"):
            # HTTP actions answer for their own CORS, as on Convex: hiding their mistakes helps no one.
            return await self.app(scope, receive, send)
        headers = {k: v for k, v in scope["headers"] if k in (b"origin", b"access-control-request-method", b"access-control-request-headers")}
        origin = headers.get(b"origin")
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            return await self._preflight(origin, headers.get(b"access-control-request-headers"), send)

        async def send_with_cors(message):
            if message["type"] == "http.response.start":
                extra = [(b"vary", b"origin, access-control-request-method, access-control-request-headers")]
                if origin is not None:
                    extra += [(b"access-control-allow-origin", origin), (b"access-control-allow-credentials", b"true")]
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        kind = _FAST_UDF_PATHS.get(scope["path"]) if scope["method"] == "POST" else None
        if kind is not None:
            return await _serve_udf(self.app, kind, scope, receive, send_with_cors)
        await self.app(scope, receive, send_with_cors)

    @staticmethod
    async def _preflight(origin, request_headers, send):
        headers = [
            (b"access-control-allow-methods", CORS_METHODS.encode()),
            (b"access-control-max-age", b"86400"),
            (b"access-control-allow-credentials", b"true"),
            (b"vary", b"origin, access-control-request-method, access-control-request-headers"),
            (b"content-length", b"0"),
        ]
        if origin is not None:
            headers.append((b"access-control-allow-origin", origin))
        if request_headers is not None:
            headers.append((b"access-control-allow-headers", request_headers))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


# --- errors ----------------------------------------------------------------------------


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse({"code": error.code, "message": error.message}, status_code=error.status)


async def _api_error(request: Request, exc: ApiError) -> Response:
    return error_response(exc)


async def _http_exception(request: Request, exc: HTTPException) -> Response:
    # axum answers unknown routes and wrong methods with an empty body
    return Response(status_code=exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("internal error on %s", request.url.path)
    return error_response(
        ApiError(500, "InternalServerError", "Your request couldn't be completed. Try again later.")
    )


def exception_handlers() -> dict:
    return {ApiError: _api_error, HTTPException: _http_exception, Exception: _unexpected}


# --- request parsing -------------------------------------------------------------------


def _deployment(request: Request):
    return request.app.state.deployment


def auth_token(request: Request):
    """The parsed Authorization header (errors for a malformed one come first, as in Convex)."""
    from console.emulator.admin import parse_authorization

    header = request.headers.get("authorization")
    no_query = header is not None or not request.scope.get("query_string")
    return parse_authorization(header, {} if no_query else request.query_params)


async def identity_for(request: Request, token):
    admin_auth = _deployment(request).admin_auth
    if token.kind == "user":  # verification may fetch provider keys: keep the loop free
        return await run_in_threadpool(admin_auth.identity_for, token)
    return admin_auth.identity_for(token)


async def authenticate(request: Request):
    return await identity_for(request, auth_token(request))


async def require_admin(request: Request):
    identity = await authenticate(request)
    _deployment(request).admin_auth.require_admin(identity)
    return identity


async def read_body(request: Request, limit: int = MAX_REQUEST_BYTES) -> bytes:
    """The body, counted as it streams in; over `limit` -> 413 without keeping the excess."""
    too_large = ApiError(413, "BadJsonBody", "Failed to buffer the request body: length limit exceeded")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        if int(declared) <= _DRAIN_LIMIT:
            await _drain(request)
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _DRAIN_LIMIT:
            break  # stop reading: the connection closes after the 413
        if size <= limit:
            chunks.append(chunk)
        # past `limit`, chunks are read and dropped so the client sees the 413, not a reset
    if size > limit:
        raise too_large
    return b"".join(chunks)


async def _drain(request: Request) -> None:
    """Read and discard the body so the client sees the 413 instead of a reset connection."""
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > _DRAIN_LIMIT:
                return
    except Exception:  # the client went away
        return


def _is_json_content_type(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    mime = content_type.split(";")[0].strip().lower()
    return mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))


async def read_json(request: Request) -> Any:
    if not _is_json_content_type(request):
        raise ApiError(400, "BadJsonBody", "Expected request with `Content-Type: application/json`")
    body = await read_body(request)
    try:
        return json.loads(body)
    except json.JSONDecodeError as error:
        raise ApiError(
            400,
            "BadJsonBody",
            f"Failed to parse the request body as JSON: {error.msg} at line {error.lineno} column {error.colno}",
        ) from None
    except UnicodeDecodeError:
        raise ApiError(400, "BadJsonBody", "Failed to parse the request body as JSON: invalid UTF-8") from None


def _deserialize_error(detail: str) -> ApiError:
    return ApiError(400, "BadJsonBody", f"Failed to deserialize the JSON body into the target type: {detail}")


def _field(body: Any, name: str, kind: type | tuple, *, required: bool = True) -> Any:
    if not isinstance(body, dict):
        raise _deserialize_error(f"invalid type: {_json_kind(body)}, expected a map")
    if name not in body or (body[name] is None and not required):
        if required:
            raise _deserialize_error(f"missing field `{name}`")
        return None
    value = body[name]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise _deserialize_error(f"{name}: invalid type: {_json_kind(value)}")
    return value


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, (int, float)):
        return f"number `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    return "sequence" if isinstance(value, list) else "map"


# --- Convex-Client header and formats ------------------------------------------------------

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
_CLIENT_TYPES = {"python-convex": "python", "python": "python", "npm-cli": "npm-cli", "npm": "npm", "actions": "actions", "dashboard": "dashboard"}


@functools.lru_cache(maxsize=256)
def client_version(header: str | None) -> tuple[str, tuple[int, int, int] | None]:
    """`Convex-Client: <client>-<semver>` -> (client type, version) as `ClientVersion::from_str`."""
    if not header:
        return "unknown", None
    parts = header.split("-")
    for n in range(1, len(parts)):
        match = _SEMVER.match("-".join(parts[n:]))
        if match:
            client = "-".join(parts[:n]).lower()
            return _CLIENT_TYPES.get(client, client), tuple(int(g) for g in match.groups()[:3])
    return _CLIENT_TYPES.get(parts[0].lower(), parts[0].lower()), None


def default_format(header: str | None) -> str:
    client, version = client_version(header)
    if client in ("npm", "npm-cli", "actions"):
        clean = version is None or version > (1, 4, 1)
    elif client == "python":
        clean = version is None or version > (0, 5, 0)
    else:
        clean = True
    return "json" if clean else "convex_encoded_json"


def structured_logs_client(header: str | None) -> bool:
    return client_version(header)[0] in ("npm-cli", "dashboard")


def resolve_format(fmt: Any, request: Request, default: str | None = None) -> str:
    if fmt is None:
        return default or default_format(request.headers.get("convex-client"))
    try:
        return values.normalize_format(fmt)
    except ValueError:
        raise ApiError(400, "BadFormat", f"format param must be one of [`json`]. Got {fmt}") from None


# --- running functions -----------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _canonicalize(path: str) -> str:
    from console.emulator.app import canonicalize_path

    return canonicalize_path(path)


def canonical_path(path: str) -> str:
    try:
        return _canonicalize(path)
    except (ValueError, TypeError) as error:
        raise ApiError(
            400, "BadConvexFunctionIdentifier", f"{path} is not a valid path to a Convex function. {error}"
        ) from None


class _BadArgs(Exception):
    """Args that are valid JSON but not a Convex value: a function error, as in Convex."""


def args_from_json(raw: Any) -> Any:
    """`args` as an object or the legacy positional `[object]`, decoded from convex_encoded_json.

    Anything that is not one object reaches the runner, which answers as Convex does
    ("Expected to receive an object as the function's argument...").
    """
    if isinstance(raw, list) and len(raw) <= 1:
        raw = raw[0] if raw else {}
    try:
        return values.decode(raw)
    except (ValueError, TypeError) as error:
        raise _BadArgs(str(error)) from None


def _log_lines(outcome) -> list[str]:
    lines = []
    for line in outcome.log_lines or []:
        lines.append(line if isinstance(line, str) else line.pretty())
    return lines


def _error_message(outcome) -> str:
    message = outcome.error_message or "Server Error"
    if message.startswith("[Request ID:"):
        return message
    return f"[Request ID: {outcome.request_id}] Server Error\n{message}"


def udf_response(outcome, fmt: str) -> dict:
    """`UdfResponse` JSON for a runner Outcome."""
    lines = _log_lines(outcome)
    if outcome.status == "success":
        try:
            body = {"status": "success", "value": values.encode_for_format(outcome.value, fmt)}
        except ValueError as error:
            body = {"status": "error", "errorMessage": f"Function return value invalid: {error}"}
    else:
        body = {"status": "error", "errorMessage": _error_message(outcome)}
        if getattr(outcome, "is_convex_error", outcome.error_data is not None):
            body["errorData"] = values.encode_for_format(outcome.error_data, fmt)
    if lines:
        body["logLines"] = lines
    return body


def _bad_args_response(path: str, detail: str) -> dict:
    request_id = secrets.token_hex(8)
    return {
        "status": "error",
        "errorMessage": f"[Request ID: {request_id}] Server Error\nInvalid arguments for {path}: {detail}",
    }


async def execute(request: Request, identity, path: str, raw_args: Any, fmt: str, expected_type: str | None,
                  canonical: str | None = None) -> dict:
    dep = _deployment(request)
    canonical = canonical or canonical_path(path)
    try:
        args = args_from_json(raw_args)
    except _BadArgs as error:
        return _bad_args_response(canonical, str(error))
    outcome = await dep.runner.run_async(
        canonical, args, identity=identity, expected_type=expected_type, caller="http"
    )
    return udf_response(outcome, fmt)


def _udf_handler(expected_type: str | None, *, admin_only: bool = False):
    async def handler(request: Request) -> Response:
        token = auth_token(request)
        body = await read_json(request)
        path = _field(body, "path", str)
        raw_args = _field(body, "args", (dict, list, str, int, float, bool))
        fmt = resolve_format(body.get("format"), request)
        canonical = canonical_path(path)
        identity = await identity_for(request, token)
        if admin_only:
            _deployment(request).admin_auth.require_admin(identity)
        return JSONResponse(await execute(request, identity, path, raw_args, fmt, expected_type, canonical))

    return handler


_FAST_UDF_PATHS = {"/api/query": "query", "/api/mutation": "mutation", "/api/action": "action"}
_UDF_HANDLERS = {kind: _udf_handler(kind) for kind in _FAST_UDF_PATHS.values()}


async def _serve_udf(app, expected_type: str, scope, receive, send) -> None:
    """`POST /api/query|mutation|action` straight from the CORS layer, without Starlette's
    middleware and router layers (on this, the hottest path, they cost as much as our own
    parsing); the same handler, answers and error responses as through the routes."""
    scope["app"] = app
    request = Request(scope, receive)
    try:
        response = await _UDF_HANDLERS[expected_type](request)
    except ApiError as error:
        response = error_response(error)
    except Exception as error:  # noqa: BLE001 - as the app's catch-all handler answers
        response = await _unexpected(request, error)
    await response(scope, receive, send)


async def run_by_url_path(request: Request) -> Response:
    token = auth_token(request)
    body = await read_json(request)
    identity = await identity_for(request, token)
    raw_args = _field(body, "args", (dict, list, str, int, float, bool))
    fmt = resolve_format(body.get("format"), request, default="json")
    parts = request.path_params["identifier"].split("/")
    if len(parts) < 2 or not parts[-1]:
        raise ApiError(
            400, "MissingIdentifier", "Path or function name not provided in path, e.g. /api/run/messages/list"
        )
    path = "/".join(parts[:-1]) + ":" + parts[-1]
    return JSONResponse(await execute(request, identity, path, raw_args, fmt, None))


async def query_get(request: Request) -> Response:
    identity = await authenticate(request)
    params = request.query_params
    if "path" not in params or "args" not in params:
        missing = "path" if "path" not in params else "args"
        raise ApiError(400, "BadQueryArgs", f"Failed to deserialize query string: missing field `{missing}`")
    try:
        raw_args = json.loads(params["args"])
    except json.JSONDecodeError as error:
        raise ApiError(400, "BadQueryArgs", f"Failed to deserialize query string: args: {error.msg}") from None
    fmt = resolve_format(params.get("format"), request)
    return JSONResponse(await execute(request, identity, params["path"], raw_args, fmt, "query"))


async def query_batch(request: Request) -> Response:
    token = auth_token(request)
    body = await read_json(request)
    identity = await identity_for(request, token)
    queries = _field(body, "queries", list)
    parsed = []
    for item in queries:
        path = _field(item, "path", str)
        raw_args = _field(item, "args", (dict, list, str, int, float, bool))
        parsed.append((path, raw_args, resolve_format(item.get("format"), request)))
        canonical_path(path)
    results = [await execute(request, identity, p, a, f, "query") for p, a, f in parsed]
    return JSONResponse({"results": results})


async def query_ts(request: Request) -> Response:
    await authenticate(request)
    return JSONResponse({"ts": values.ts_to_wire(_deployment(request).db.last_commit_ts)})


# --- meta and admin endpoints ------------------------------------------------------------


async def root(request: Request) -> Response:
    return PlainTextResponse("This Convex deployment is running. See https://docs.convex.dev/.")


async def version(request: Request) -> Response:
    from console.emulator.server import VERSION

    return PlainTextResponse(VERSION)


async def instance_name(request: Request) -> Response:
    return PlainTextResponse(_deployment(request).instance_name)


async def check_admin_key(request: Request) -> Response:
    await require_admin(request)
    return JSONResponse({"success": True, "allowedOps": [], "isReadOnly": False})


def _user_tables(db) -> list[str]:
    return [name for name in db.table_names() if not name.startswith("_")]


async def shapes2(request: Request) -> Response:
    await require_admin(request)
    dep = _deployment(request)
    return JSONResponse(await run_in_threadpool(shapes.all_table_shapes, dep.db))


async def get_indexes(request: Request) -> Response:
    await require_admin(request)
    db = _deployment(request).db
    indexes = []
    for table in _user_tables(db):
        for index in db.index_list(table):
            if index["name"] in _HIDDEN_INDEXES:
                continue
            indexes.append(
                {
                    "table": table,
                    "name": index["name"],
                    "fields": index["fields"],
                    "backfill": {"state": "done"},
                    "staged": bool(index.get("staged", False)),
                }
            )
    return JSONResponse({"indexes": indexes})


async def delete_tables(request: Request) -> Response:
    await require_admin(request)
    body = await read_json(request)
    names = _field(body, "tableNames", list)
    dep = _deployment(request)
    await run_in_threadpool(_delete_tables, dep.db, names)
    return Response(status_code=200)


def _delete_tables(db, names: list) -> None:
    existing = set(db.table_names())
    for name in names:
        if not isinstance(name, str) or name not in existing:
            raise ApiError(404, "TableNotFound", f"Table {name!r} not found")
    drop = getattr(db, "delete_table", None) or getattr(db, "drop_table", None)
    for name in names:
        if drop is not None:
            drop(name)
        else:
            _delete_all_documents(db, name)


def _delete_all_documents(db, table: str) -> None:
    query = {"source": {"type": "FullTableScan", "tableName": table, "order": "asc"}, "operators": []}

    def delete_batch(tx) -> int:
        page = tx.query_page(query, cursor=None, page_size=1000)
        for doc in page["page"]:
            tx.remove(doc["_id"])
        return len(page["page"])

    while db.write(delete_batch)[0]:
        pass


async def stream_function_logs(request: Request) -> Response:
    return await _stream_logs(request, structured=structured_logs_client(request.headers.get("convex-client")))


async def stream_udf_execution(request: Request) -> Response:
    return await _stream_logs(request, structured=False)


async def _stream_logs(request: Request, *, structured: bool) -> Response:
    await require_admin(request)
    raw_cursor = request.query_params.get("cursor", "0")
    try:
        cursor = int(float(raw_cursor))
    except ValueError:
        raise ApiError(400, "BadQueryArgs", f"Failed to deserialize query string: cursor: invalid number {raw_cursor!r}") from None
    dep = _deployment(request)
    poll = asyncio.ensure_future(dep.executions.wait_since(cursor, LOG_POLL_TIMEOUT_S))
    stopping = dep.extras.get("stopping")
    waits = [poll] + ([asyncio.ensure_future(stopping.wait())] if stopping is not None else [])
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in waits[1:]:
        task.cancel()
    if not poll.done():  # shutting down: answer now so the server can stop
        poll.cancel()
        return JSONResponse(stream_response([], cursor, structured=structured))
    entries, new_cursor = poll.result()
    return JSONResponse(stream_response(entries, new_cursor, structured=structured))


def routes(deployment) -> list[Route]:
    post = ["POST"]
    return [  # the function endpoints first: the router tries the routes in order
        Route("/api/query", _UDF_HANDLERS["query"], methods=post),
        Route("/api/mutation", _UDF_HANDLERS["mutation"], methods=post),
        Route("/api/action", _UDF_HANDLERS["action"], methods=post),
        Route("/api/query", query_get, methods=["GET"]),
        Route("/", root, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/instance_name", instance_name, methods=["GET"]),
        Route("/instance_version", version, methods=["GET"]),
        Route("/api/function", _udf_handler(None, admin_only=True), methods=post),
        Route("/api/run/{identifier:path}", run_by_url_path, methods=post),
        Route("/api/query_batch", query_batch, methods=post),
        Route("/api/query_ts", query_ts, methods=post),
        Route("/api/check_admin_key", check_admin_key, methods=["GET"]),
        Route("/api/shapes2", shapes2, methods=["GET"]),
        Route("/api/get_indexes", get_indexes, methods=["GET"]),
        Route("/api/delete_tables", delete_tables, methods=post),
        Route("/api/stream_function_logs", stream_function_logs, methods=["GET"]),
        Route("/api/app_metrics/stream_function_logs", stream_function_logs, methods=["GET"]),
        Route("/api/stream_udf_execution", stream_udf_execution, methods=["GET"]),
        Route("/api/app_metrics/stream_udf_execution", stream_udf_execution, methods=["GET"]),
    ]
