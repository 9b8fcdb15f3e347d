"""Errors the deployment client raises, and how an HTTP answer or a transport failure becomes one.

FunctionError (the function ran and failed), ApiError / AuthError (a non-function HTTP error with
Convex's `code` and `message`), Unreachable (nothing answered), BadResponse (something answered
that is not a Convex deployment). All are ClientError; re-exported by console.client.
"""

from __future__ import annotations

import errno
import json
import re
import socket
import sys
from typing import Any, Sequence

# Same as console.client: keep httpx's CLI out even when this module is imported first.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
import httpx  # noqa: E402


_REQUEST_ID = re.compile(r"^\[Request ID: ([^\]]+)\]")


class ClientError(Exception):
    """Base of every error this client raises."""


class FunctionError(ClientError):
    """The function ran and failed. `data` is the decoded ConvexError data, else None."""

    def __init__(self, message: str, data: Any = None, *, log_lines: Sequence[Any] = (), path: str = ""):
        super().__init__(message)
        self.message = message
        self.data = data
        self.log_lines = list(log_lines)
        self.path = path

    @property
    def request_id(self) -> str | None:
        match = _REQUEST_ID.match(self.message)
        return match.group(1) if match else None

    @property
    def summary(self) -> str:
        """The first line that says what went wrong, without the `[Request ID] Server Error` line."""
        lines = [line.strip() for line in self.message.splitlines() if line.strip()]
        if len(lines) > 1 and _REQUEST_ID.match(lines[0]):
            lines = lines[1:]
        return lines[0] if lines else self.message


class ApiError(ClientError):
    """A non-function HTTP error: `{"code", "message"}` with its HTTP status."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{code}: {message}" if code else message)
        self.status = status
        self.code = code
        self.message = message


class AuthError(ApiError):
    """401/403: the key or token was refused."""


class Unreachable(ClientError):
    """Nothing usable answered at `url` (refused, DNS, TLS, timeout, dropped connection)."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"Cannot reach {url}: {reason}")
        self.url = url
        self.reason = reason


class BadResponse(ClientError):
    """Something answered, but not like a Convex deployment."""

    def __init__(self, url: str, detail: str, status: int | None = None):
        super().__init__(f"{url} does not look like a Convex deployment: {detail}")
        self.url = url
        self.detail = detail
        self.status = status


# ---------------------------------------------------------------------------
# Parsing answers and transport failures


def _json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        snippet = response.text[:80].replace("\n", " ")
        raise BadResponse(str(response.url), f"HTTP {response.status_code} with a non-JSON body {snippet!r}", response.status_code) from None


def _raise_for_status(response: httpx.Response) -> None:
    if response.is_success:
        return
    code, message = _error_fields(response)
    status = response.status_code
    if code is None:
        if status == 404:
            raise BadResponse(str(response.url), "HTTP 404 (no such route)", status)
        code = f"HTTP{status}"
    error_type = AuthError if status in (401, 403) else ApiError
    raise error_type(status, code, message)


def _error_fields(response: httpx.Response) -> tuple[str | None, str]:
    try:
        body = response.json()
    except ValueError:
        return None, response.text.strip()[:200] or response.reason_phrase
    if isinstance(body, dict) and "code" in body:
        return str(body["code"]), str(body.get("message", ""))
    return None, json.dumps(body)[:200]


_ERRNO = re.compile(r"^\[Errno -?\d+\]\s*")


def _root_os_error(exc: BaseException) -> OSError | None:
    """The most specific OSError behind `exc` (one with an errno when there is one)."""
    seen = set()
    fallback: OSError | None = None
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError):
            if current.errno is not None or isinstance(current, socket.gaierror):
                return current
            fallback = fallback or current
        nested = getattr(current, "exceptions", None)  # an ExceptionGroup from happy eyeballs
        if nested:
            found = next((e for e in map(_root_os_error, nested) if e is not None), None)
            if found is not None:
                return found
        current = current.__cause__ or current.__context__
    return fallback


def _transport_reason(exc: Exception) -> str:
    root = _root_os_error(exc)
    if isinstance(root, socket.gaierror):
        return "host name not found"
    if isinstance(root, ConnectionRefusedError) or (root is not None and root.errno == errno.ECONNREFUSED):
        return "connection refused (is the deployment running?)"
    text = str(exc) or type(exc).__name__
    text = _ERRNO.sub("", text.splitlines()[0])
    lower = text.lower()
    if "refused" in lower:
        return "connection refused (is the deployment running?)"
    if "name or service not known" in lower or "nodename nor servname" in lower or "name resolution" in lower:
        return "host name not found"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the server broke the connection ({text})"
    if root is not None and root.strerror:
        return f"{text[:1].lower() + text[1:]} ({root.strerror.lower()})"
    return text[:1].lower() + text[1:]
