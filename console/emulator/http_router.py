"""The Python authoring API for HTTP actions, mirroring `httpRouter()` (QUERIES §4.4).

```python
from console.emulator.functions import http_action
from console.emulator.http_router import HttpRouter, Response

http = HttpRouter()

@http_action
def hello(ctx, request):
    return Response.json({"hi": request.json()["name"]})

http.route(path="/hello", method="POST", handler=hello)
http.route(path_prefix="/files/", method="GET", handler=hello)
```
Matching is Convex's: an exact path wins, else the longest matching prefix; HEAD is served
by the GET route. Registration errors use Convex's messages (`convex/src/server/router.ts`).

`Request` (what a handler receives) has a sync, await-free body API: `body()`, `text()`,
`json()`, `stream()` (chunks as they arrive). A handler returns a `Response`.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Iterator, Mapping
from urllib.parse import parse_qsl, urlsplit

from console.emulator.functions import HttpAction

ROUTABLE_HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
MAX_BODY_BYTES = 20 << 20  # HTTP_ACTION_BODY_LIMIT


class RouteError(ValueError):
    """A route that Convex's `http.route()` would refuse (same message)."""


def normalize_method(method: str) -> str:
    return "GET" if method == "HEAD" else method


class HttpRouter:
    """`httpRouter()`: exact routes by path then method, prefix routes by method then prefix."""

    is_router = True

    def __init__(self) -> None:
        self.exact_routes: dict[str, dict[str, Callable]] = {}
        self.prefix_routes: dict[str, dict[str, Callable]] = {}

    def route(self, *, method: str | None = None, handler: Callable | None = None,
              path: str | None = None, path_prefix: str | None = None) -> None:
        if not handler:
            raise RouteError("route requires handler")
        if not method:
            raise RouteError("route requires method")
        if method not in ROUTABLE_HTTP_METHODS:
            raise RouteError(f"'{method}' is not an allowed HTTP method (like GET, POST, PUT etc.)")
        if path is not None and path_prefix is not None:
            raise RouteError("route takes either path or pathPrefix, not both")
        if path is None and path_prefix is None:
            raise RouteError("route requires path or pathPrefix")
        if not callable(handler):
            raise RouteError("route handler must be an http_action")
        if path is not None:
            self._add_exact(path, method, handler)
        else:
            self._add_prefix(path_prefix, method, handler)

    def _add_exact(self, path: str, method: str, handler: Callable) -> None:
        if not path.startswith("/"):
            raise RouteError(f"path '{path}' does not start with a /")
        for prefix in self.prefix_routes.get(method, {}):
            if path.startswith(prefix):
                raise RouteError(f"{method} path {path} is shadowed by pathPrefix {prefix}")
        methods = self.exact_routes.setdefault(path, {})
        if method in methods:
            raise RouteError(f"Path '{path}' for method {method} already in use")
        methods[method] = handler

    def _add_prefix(self, prefix: str, method: str, handler: Callable) -> None:
        if not prefix.startswith("/"):
            raise RouteError(f"path '{prefix}' does not start with a /")
        if not prefix.endswith("/"):
            raise RouteError(f"pathPrefix {prefix} must end with a /")
        prefixes = self.prefix_routes.setdefault(method, {})
        for existing in prefixes:
            if prefix.startswith(existing):
                raise RouteError(f"{method} pathPrefix {prefix} is shadowed by pathPrefix {existing}")
        prefixes[prefix] = handler

    def get_routes(self) -> list[tuple[str, str, Callable]]:
        """`[(path, method, handler)]`: exact routes sorted, then prefixes as `"<prefix>*"`."""
        exact = [
            (path, method, self.exact_routes[path][method])
            for path in sorted(self.exact_routes)
            for method in sorted(self.exact_routes[path])
        ]
        prefixes = [
            (f"{prefix}*", method, self.prefix_routes[method][prefix])
            for method in sorted(self.prefix_routes)
            for prefix in sorted(self.prefix_routes[method])
        ]
        return exact + prefixes

    def lookup(self, path: str, method: str) -> tuple[Callable, str, str] | None:
        """`(handler, normalized method, route path)` or None."""
        method = normalize_method(method)
        found = self.exact_routes.get(path, {}).get(method)
        if found is not None:
            return found, method, path
        best = None
        for prefix, handler in self.prefix_routes.get(method, {}).items():
            if path.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, handler)
        if best is None:
            return None
        return best[1], method, f"{best[0]}*"

    def route_specs(self) -> list[dict]:
        """`{"method", "path"}` per route, for apiSpec's HttpAction entries."""
        return [{"method": method, "path": path} for path, method, _ in self.get_routes()]


def http_router() -> HttpRouter:
    return HttpRouter()


# ---------------------------------------------------------------------------
# Request and Response


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only headers; repeated headers are joined with ", " as fetch does."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._raw: Any = None
        self._built: dict[str, str] | None = None
        self._pairs = pairs

    @classmethod
    def from_raw(cls, raw: Iterable[tuple[bytes, bytes]]) -> "Headers":
        """From ASGI's lower-cased byte pairs, decoded on first use."""
        headers = cls(())
        headers._raw = raw
        return headers

    @property
    def _items(self) -> dict[str, str]:
        if self._built is None:
            pairs = ((k.decode("latin-1"), v.decode("latin-1")) for k, v in self._raw) if self._raw is not None else self._pairs
            items: dict[str, str] = {}
            for name, value in pairs:
                key = name.lower()
                items[key] = f"{items[key]}, {value}" if key in items else value
            self._built = items
        return self._built

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._items.get(name.lower(), default)

    def has(self, name: str) -> bool:
        return name.lower() in self._items

    def __repr__(self) -> str:
        shown = {k: ("<redacted>" if k == "authorization" else v) for k, v in self._items.items()}
        return f"Headers({shown!r})"


class BodyUsed(RuntimeError):
    pass


class BodyTooLarge(RuntimeError):
    """The request body went past 20 MiB while the handler read it."""

    def __init__(self, limit: int = MAX_BODY_BYTES):
        super().__init__(f"Request body is too large: the limit for HTTP actions is {limit} bytes")
        self.limit = limit


class Request:
    """What an HTTP action receives: `method`, `url`, `headers`, and a streamed body.

    `chunks` is an iterator of bytes, read lazily; the body can be consumed once
    (`body()`/`text()`/`json()` cache the bytes, `stream()` hands out the chunks).
    """

    def __init__(self, method: str, url: str, headers: Headers | Iterable[tuple[str, str]] = (),
                 chunks: Iterable[bytes] | bytes | None = None, *, limit: int = MAX_BODY_BYTES) -> None:
        self.method = method
        self.url = url
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        if isinstance(chunks, (bytes, bytearray)):
            chunks = [bytes(chunks)]
        self._chunks = iter(chunks or ())
        self._limit = limit
        self._cached: bytes | None = None
        self.body_used = False
        self.bytes_read = 0

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))

    def stream(self) -> Iterator[bytes]:
        if self.body_used:
            raise BodyUsed("Body already used: the request body can be read once")
        self.body_used = True
        for chunk in self._chunks:
            self.bytes_read += len(chunk)
            if self.bytes_read > self._limit:
                raise BodyTooLarge(self._limit)
            if chunk:
                yield chunk

    def body(self) -> bytes:
        if self._cached is None:
            self._cached = b"".join(self.stream())
        return self._cached

    array_buffer = bytes = body

    def text(self) -> str:
        return self.body().decode("utf-8", errors="replace")

    def json(self) -> Any:
        raw = self.body()
        try:
            return json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError("Unexpected token in JSON: the body is not UTF-8") from None
        except json.JSONDecodeError as error:
            if not raw.strip():
                raise ValueError("Unexpected end of JSON input") from None
            raise ValueError(f"Unexpected token in JSON at position {error.pos}") from None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"


class Response:
    """What an HTTP action returns: `Response(body, status=200, headers={...})`.

    `body` may be None, bytes, str (sent as text/plain;charset=UTF-8 unless a Content-Type is
    given) or an iterable of bytes chunks (streamed). `Response.json(value)` sends JSON.
    """

    def __init__(self, body: Any = None, status: int = 200, headers: Mapping[str, str] | Iterable | None = None) -> None:
        if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
            raise ValueError(f"Response status {status!r} is not in the range 200 to 599")
        self.status = status
        pairs = headers.items() if hasattr(headers, "items") else (headers or ())
        self.header_pairs: list[tuple[str, str]] = [(str(k), str(v)) for k, v in pairs]
        if body is None or type(body) is bytes:
            pass
        elif isinstance(body, str):
            self._default_type("text/plain;charset=UTF-8")
            body = body.encode("utf-8")
        elif isinstance(body, (bytearray, memoryview)):
            body = bytes(body)
        elif body is not None and not isinstance(body, bytes) and not hasattr(body, "__iter__"):
            raise TypeError(f"Response body must be bytes, str, an iterable of bytes or None, not {type(body).__name__}")
        self.body = body

    @classmethod
    def json(cls, value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> "Response":
        response = cls(json.dumps(value, separators=(",", ":")).encode("utf-8"), status, headers)
        response._default_type("application/json")
        return response

    def _default_type(self, content_type: str) -> None:
        if not any(k.lower() == "content-type" for k, _ in self.header_pairs):
            self.header_pairs.append(("Content-Type", content_type))

    @property
    def headers(self) -> Headers:
        return Headers(self.header_pairs)

    def iter_body(self) -> Iterator[bytes]:
        if self.body is None:
            return
        if isinstance(self.body, bytes):
            if self.body:
                yield self.body
            return
        for chunk in self.body:
            if isinstance(chunk, str):
                chunk = chunk.encode("utf-8")
            if chunk:
                yield bytes(chunk)

    def __repr__(self) -> str:
        return f"<Response {self.status}>"


__all__ = [
    "HttpRouter", "http_router", "HttpAction", "Request", "Response", "Headers", "RouteError",
    "BodyTooLarge", "BodyUsed", "ROUTABLE_HTTP_METHODS", "MAX_BODY_BYTES",
]
