"""HTTP actions: the app's router served on the site port and under `/http/` on the cloud
port (PROTOCOL §7), as Convex does.

- No route: 404 `No HttpAction routed for <path>` (text/plain).
- A handler that raises: 500 JSON `{"code": "[Request ID: X] Server Error: <message>",
  "trace": "<message and frames>", "data"?: <ConvexError data>}` (Convex's RedactedJsError).
- Request bodies are streamed to the handler and limited to 20 MiB (413 past that).
- Each run is logged as an `HttpAction` execution named `"METHOD /route"`.
- The cloud port also gets the environment-variable endpoints from here
  (`system/environment.py`), as this is the HTTP part's route provider.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any, Iterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route

from console import values
from console.emulator.errors import ApiError, ConvexEngineError
from console.emulator.http_router import (
    MAX_BODY_BYTES,
    BodyTooLarge,
    Headers,
    HttpRouter,
    Request,
    Response,
)
from console.emulator.identity import Identity

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
_BODYLESS = ("GET", "HEAD", "OPTIONS")
_WANTED_HEADERS = (b"content-length", b"authorization", b"transfer-encoding")
_ANONYMOUS = Identity.anonymous()
HANDLER_THREADS = 32
NOT_A_ROUTER = "The default export of `convex/http.js` is not a Router."


def get_router(deployment) -> HttpRouter | None:
    router = getattr(deployment.app, "http", None)
    if router is None:
        return None
    if not getattr(router, "is_router", False) or not hasattr(router, "lookup"):
        raise ConvexEngineError(NOT_A_ROUTER)
    return router


def install(deployment) -> None:
    """Publish the routes for apiSpec / modules:list (idempotent)."""
    if deployment.extras.get("http_actions"):
        return
    deployment.extras["http_actions"] = True

    def specs() -> list[dict]:
        try:
            router = get_router(deployment)
        except ConvexEngineError:
            return []
        return router.route_specs() if router is not None else []

    deployment.http_routes = specs


# --- auth inside an HTTP action ---------------------------------------------------------------


class HttpAuth:
    """`ctx.auth` of an HTTP action: with a bad Authorization header, `get_user_identity()`
    raises the reason (as Convex does since convex-backend#58); with none it returns None."""

    def __init__(self, identity: Identity, error: str | None):
        self._identity = identity
        self._error = error

    def get_user_identity(self) -> dict | None:
        if self._error:
            raise ConvexEngineError(self._error)
        return self._identity.user_attributes


async def _identity_for(header: str, deployment) -> tuple[Identity, str | None]:
    from console.emulator.admin import parse_authorization

    try:
        token = parse_authorization(header, {})
        if token.kind == "user":
            return await _verify_bearer(token.secret or "", deployment), None
        return deployment.admin_auth.identity_for(token), None
    except ApiError as error:
        return Identity.anonymous(), error.message


async def _verify_bearer(token: str, deployment) -> Identity:
    try:
        from console.emulator.auth import averify_bearer
    except ImportError:
        from console.emulator.admin import AuthToken

        return await run_in_threadpool(deployment.admin_auth.identity_for, AuthToken("user", token))
    return await averify_bearer(token, deployment)


# --- the request body, streamed from the event loop to the handler's thread ---------------------


def _body_chunks(request: StarletteRequest, loop: asyncio.AbstractEventLoop) -> Iterator[bytes]:
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = asyncio.run_coroutine_threadsafe(stream.__anext__(), loop).result()
        except StopAsyncIteration:
            return
        yield chunk


async def _drain(request: StarletteRequest, limit: int = 4 * MAX_BODY_BYTES) -> None:
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit:
                return
    except Exception:  # the client went away, or the body was read already
        return


# --- serving ----------------------------------------------------------------------------------


def _executor(deployment) -> concurrent.futures.ThreadPoolExecutor:
    """Handlers run on their own pool (cheaper to reach than anyio's, and sized apart from it)."""
    executor = deployment.extras.get("http_actions_executor")
    if executor is None:
        executor = deployment.extras["http_actions_executor"] = concurrent.futures.ThreadPoolExecutor(
            max_workers=HANDLER_THREADS, thread_name_prefix="convex-http")
    return executor


def _too_large() -> StarletteResponse:
    return PlainTextResponse(
        f"Request body is too large: the limit for HTTP actions is {MAX_BODY_BYTES} bytes", status_code=413
    )


def _error_response(outcome) -> StarletteResponse:
    prefix = f"[Request ID: {outcome.request_id}] Server Error\n"
    text = outcome.error_message or ""
    trace = text[len(prefix):] if text.startswith(prefix) else text
    message = trace.split("\n", 1)[0]
    body: dict[str, Any] = {"code": f"[Request ID: {outcome.request_id}] Server Error: {message}", "trace": trace.rstrip("\n")}
    if outcome.is_convex_error:
        body["data"] = values.encode(outcome.error_data)
    return JSONResponse(body, status_code=500)


def _site_url(deployment, request: StarletteRequest, path: str) -> str:
    base = deployment.site_url or str(request.base_url).rstrip("/")
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{base}{path}" + (f"?{query}" if query else "")


def _run_handler(deployment, handler, http_request: Request, identity: Identity, auth_error: str | None,
                 route: str, state: dict):
    def invoke(ctx, request):
        ctx.auth = HttpAuth(identity, auth_error)
        try:
            result = handler(ctx, request)
            if not isinstance(result, Response):
                raise TypeError(
                    f"The HTTP action for {route} returned {type(result).__name__}, not a Response "
                    "(return Response(...) or Response.json(...))"
                )
            body = b"".join(result.iter_body())
            if len(body) > MAX_BODY_BYTES:
                raise ValueError(f"The HTTP action response is {len(body)} bytes, over the {MAX_BODY_BYTES} byte limit")
            state["response"] = (result, body)
            return None
        except BodyTooLarge:
            state["too_large"] = True
            raise

    return deployment.runner.run_http_action(invoke, http_request, identity=identity, route=route)


async def serve(request: StarletteRequest, deployment, path: str) -> StarletteResponse:
    router = get_router(deployment)
    match = router.lookup(path, request.method) if router is not None else None
    if match is None:
        return PlainTextResponse(f"No HttpAction routed for {path}", status_code=404)
    handler, method, route_path = match
    scope = request.scope
    wanted = {k: v for k, v in scope["headers"] if k in _WANTED_HEADERS}
    declared = wanted.get(b"content-length", b"").strip()
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        await _drain(request)
        return _too_large()
    if b"authorization" in wanted:
        identity, auth_error = await _identity_for(wanted[b"authorization"].decode("latin-1"), deployment)
    else:
        identity, auth_error = _ANONYMOUS, None
    loop = asyncio.get_running_loop()
    has_body = declared not in (b"", b"0") if declared else (
        b"transfer-encoding" in wanted or request.method not in _BODYLESS)
    chunks = _body_chunks(request, loop) if has_body else ()
    http_request = Request(request.method, _site_url(deployment, request, path), Headers.from_raw(scope["headers"]), chunks)
    state: dict = {}
    route = f"{method} {route_path}"
    if not has_body and deployment.runner.runs_inline("http " + route):
        # Fast and self-contained lately: on the loop, which saves two thread hand-offs (a body
        # would be read from the loop, so requests with one always go to the threads).
        outcome = _run_handler(deployment, handler, http_request, identity, auth_error, route, state)
    else:
        outcome = await loop.run_in_executor(
            _executor(deployment), _run_handler, deployment, handler, http_request, identity, auth_error, route, state,
        )
    if state.get("too_large"):
        await _drain(request)
        return _too_large()
    if not outcome.ok:
        return _error_response(outcome)
    result, body = state["response"]
    return _to_starlette(result, body, head=request.method == "HEAD")


def _to_starlette(result: Response, body: bytes, *, head: bool) -> StarletteResponse:
    response = StarletteResponse(b"" if head else body, status_code=result.status)
    response.raw_headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in result.header_pairs
        if name.lower() not in ("content-length", "transfer-encoding")
    ]
    response.raw_headers.append((b"content-length", str(len(body)).encode()))
    return response


def site_routes(deployment) -> list[Route]:
    install(deployment)

    async def site(request: StarletteRequest) -> StarletteResponse:
        return await serve(request, deployment, request.url.path)

    return [Route("/{path:path}", site, methods=METHODS)]


def cloud_routes(deployment) -> list[Route]:
    from console.emulator.system import environment

    install(deployment)

    async def nested(request: StarletteRequest) -> StarletteResponse:
        return await serve(request, deployment, "/" + request.path_params.get("path", ""))

    return [
        *environment.routes(deployment),
        Route("/http/{path:path}", nested, methods=METHODS),
    ]
