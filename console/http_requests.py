"""Requests to HTTP actions (the `.convex.site` side), headless: what the HTTP screen's request
builder and the CORS audit send. Used through `DeploymentClient.http_request`.

Bad input gives a clear `HttpExchange` or a one-line `Unreachable`, never a hang: a total
deadline per request, redirects reported (not followed), huge bodies read in chunks and kept
only up to `max_body` bytes (the rest is counted, up to `max_read`), non-UTF-8 bodies shown
as a hex preview.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence
from urllib.parse import urlencode, urlsplit

import httpx

DEFAULT_MAX_BODY = 1 << 20  # kept for the view
DEFAULT_MAX_READ = 64 << 20  # counted past that only up to here, then the stream is closed
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class HttpExchange:
    """One request and what came back."""

    method: str
    url: str
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    status: int = 0
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""  # at most max_body bytes
    size: int = 0  # bytes received (or read before giving up)
    complete: bool = True  # False when reading stopped at max_read
    truncated: bool = False  # body holds only the first bytes
    elapsed: float = 0.0  # seconds, request sent to last byte read

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        values = [v for k, v in self.headers if k.lower() == wanted]
        return ", ".join(values) if values else None

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    @property
    def redirect(self) -> str | None:
        return self.header("location") if 300 <= self.status < 400 else None

    @property
    def is_no_route(self) -> bool:
        return self.status == 404 and self.body.startswith(b"No HttpAction routed for ")

    def body_text(self, *, limit: int | None = None) -> tuple[str, str]:
        """(text to show, note): pretty JSON, UTF-8 text, or a hex preview of binary data."""
        data = self.body if limit is None else self.body[:limit]
        note = size_note(self)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            if self.truncated and error.start >= len(data) - 3:  # a character cut by the truncation
                text = data[: error.start].decode("utf-8")
            else:
                return hex_preview(data), f"binary body ({describe_size(self.size)}, not UTF-8){note}"
        if (self.content_type.endswith("json") or text[:1] in "{[") and not self.truncated:
            try:
                return json.dumps(json.loads(text), indent=2, ensure_ascii=False), f"JSON{note}"
            except ValueError:
                pass
        return text, f"text{note}"

    def summary(self) -> str:
        if self.redirect:
            return f"{self.status} {self.reason} -> {self.redirect} (redirect not followed)"
        return f"{self.status} {self.reason} · {describe_size(self.size)}{'+' if not self.complete else ''} · {self.elapsed * 1000:.0f} ms"


def size_note(exchange: HttpExchange) -> str:
    if not exchange.truncated:
        return ""
    total = describe_size(exchange.size) + ("+" if not exchange.complete else "")
    return f"; showing the first {describe_size(len(exchange.body))} of {total}"


def describe_size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1 << 20:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1 << 20):.1f} MiB"


def hex_preview(data: bytes, *, width: int = 16, max_lines: int = 64) -> str:
    lines = []
    for offset in range(0, min(len(data), width * max_lines), width):
        chunk = data[offset: offset + width]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {hexes:<{width * 3}} {text}")
    if len(data) > width * max_lines:
        lines.append("…")
    return "\n".join(lines)


def build_url(base: str, path: str, query: Mapping[str, str] | Sequence[tuple[str, str]] | str | None = None) -> str:
    if not path.startswith("/"):
        path = "/" + path
    url = base.rstrip("/") + path
    if query:
        text = query if isinstance(query, str) else urlencode(list(query.items()) if isinstance(query, Mapping) else list(query))
        text = text.lstrip("?")
        if text:
            url += ("&" if "?" in url else "?") + text
    return url


def _reason(status: int) -> str:
    try:
        import http

        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


async def send(http: httpx.AsyncClient, method: str, url: str, *, headers: Sequence[tuple[str, str]] | Mapping[str, str] = (),
               body: bytes | None = None, timeout: float = 30.0, max_body: int = DEFAULT_MAX_BODY,
               max_read: int = DEFAULT_MAX_READ) -> HttpExchange:
    """Send one request; raises `console.client.Unreachable` when there is no answer in time."""
    from console.client import Unreachable, _transport_reason

    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    exchange = HttpExchange(method=method, url=url, request_headers=pairs)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Unreachable(url, "not an http(s) URL")
    started = time.perf_counter()
    deadline = started + timeout
    request = http.build_request(method, url, headers=pairs, content=body,
                                 timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))
    try:
        response = await http.send(request, stream=True, follow_redirects=False)
        try:
            exchange.status, exchange.reason = response.status_code, response.reason_phrase or _reason(response.status_code)
            exchange.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw]
            kept = bytearray()
            async for chunk in response.aiter_bytes():
                exchange.size += len(chunk)
                if len(kept) < max_body:
                    kept.extend(chunk[: max_body - len(kept)])
                if exchange.size >= max_read or time.perf_counter() > deadline:
                    exchange.complete = False
                    break
            exchange.body = bytes(kept)
            exchange.truncated = exchange.size > len(kept)
        finally:
            await response.aclose()
    except httpx.TimeoutException as error:
        what = "connecting" if isinstance(error, httpx.ConnectTimeout) else "waiting for an answer (the handler may still be running)"
        raise Unreachable(url, f"timed out after {timeout:g} s {what}") from None
    except httpx.TransportError as error:
        raise Unreachable(url, _transport_reason(error)) from None
    exchange.elapsed = time.perf_counter() - started
    return exchange


def json_body(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")
