"""Upload and download routes (PROTOCOL §3.4; backend `crates/local_backend/src/storage.rs`).

POST /api/storage/upload?token=...   raw body -> {"storageId"}; optional `Digest: sha-256=<b64>`
GET  /api/storage/<uuid>              the bytes; one `Range` -> 206, several -> 416
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from typing import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from console.emulator import storage
from console.streamed_files import READ_AHEAD, DirectReader, read_ahead
from console.emulator.errors import ApiError

CACHE_CONTROL = "private, max-age=2592000"  # 30 days: storage GETs are immutable
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_CONTENT_TYPE = re.compile(rf"^{_TOKEN}/{_TOKEN}\s*(;.*)?$")
_RANGE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


def _service(request: Request) -> storage.StorageService:
    return storage.install(request.app.state.deployment)


def _content_type(request: Request) -> str | None:
    value = request.headers.get("content-type")
    if value is None:
        return None
    if not _CONTENT_TYPE.match(value.strip()):
        raise ApiError(400, "BadHeader", "Bad header for content-type: invalid HTTP header")
    return value.strip()


async def upload(request: Request) -> Response:
    service = _service(request)
    token = request.query_params.get("token")
    if token is None:
        raise ApiError(400, "BadQueryArgs", "Failed to deserialize query string: missing field `token`")
    service.tokens.check(token)
    content_type = _content_type(request)
    expected = storage.parse_digest_header(request.headers.get("digest"))
    writer = service.new_writer()
    try:
        async for chunk in request.stream():
            await writer.write(chunk)
        digest = await writer.finish()
        if expected is not None and expected != digest:
            raise storage.mismatch_error(expected, digest)
        storage_id = await run_in_threadpool(service.commit_upload, writer, digest, content_type)
    except ClientDisconnect:
        return Response(status_code=400)  # nobody reads it
    except OSError as error:  # disk full, data dir removed...
        raise ApiError(500, "InternalServerError", f"Could not store the upload: {error.strerror or error}") from None
    finally:
        # A broken, refused or cancelled upload leaves nothing behind (no-op after the move).
        await asyncio.shield(writer.discard())
    return JSONResponse({"storageId": storage_id})


def _parse_ranges(header: str, size: int) -> list[tuple[int, int]] | None:
    """`bytes=a-b, ...` -> inclusive (start, end) pairs; None when the header is not usable."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec:
        return None
    ranges = []
    for part in spec.split(","):
        match = _RANGE.match(part)
        if not match or match.group(1) == match.group(2) == "":
            return None
        first, last = match.group(1), match.group(2)
        if first == "":  # suffix: the last N bytes
            length = int(last)
            ranges.append((max(size - length, 0), size - 1))
            continue
        start = int(first)
        if last and int(last) < start:
            return None  # not a valid range: ignored, as a missing header
        end = min(int(last), size - 1) if last else size - 1
        ranges.append((start, end))
    return ranges


def _file_body(fd: int, start: int, length: int) -> AsyncIterator[bytes]:
    """The bytes [start, start+length) of an open blob, read ahead on a thread of its own."""
    reader = DirectReader(fd, start, length)
    return read_ahead(reader.read, depth=READ_AHEAD, thread_name="blob-reader", close=reader.close)


def _not_found(name: str) -> ApiError:
    return ApiError(404, "FileNotFound", f"File {name} not found")


async def download(request: Request) -> Response:
    service = _service(request)
    name = request.path_params["uuid"]
    try:
        file_uuid = str(uuid.UUID(name))
    except ValueError:
        raise ApiError(
            400,
            "InvalidStoragePath",
            f"Invalid storage path: \"{name}\". Please use `storage.getUrl()` to generate a valid URL to retrieve "
            "files. See https://docs.convex.dev/file-storage/serve-files for more details",
        ) from None
    entry = await run_in_threadpool(service.entry_by_uuid, file_uuid)
    if entry is None:
        raise _not_found(name)
    try:  # once open, a concurrent delete no longer matters
        fd = await run_in_threadpool(os.open, service.blob_path(entry.key), os.O_RDONLY)
    except FileNotFoundError:  # deleted since the lookup
        raise _not_found(name) from None
    headers = {"Cache-Control": CACHE_CONTROL, "Accept-Ranges": "bytes"}
    if entry.content_type:  # exactly as stored (media_type= would add a charset)
        headers["Content-Type"] = entry.content_type
    range_header = request.headers.get("range")
    ranges = _parse_ranges(range_header, entry.size) if range_header else None
    if ranges is not None:
        if len(ranges) != 1 or ranges[0][0] >= entry.size:
            os.close(fd)
            headers = {"Content-Range": f"bytes */{entry.size}"} if len(ranges) == 1 else {}
            return Response(status_code=416, headers=headers)
        start, end = ranges[0]
        length = end - start + 1
        headers.update({"Content-Range": f"bytes {start}-{end}/{entry.size}", "Content-Length": str(length)})
        return StreamingResponse(_file_body(fd, start, length), 206, headers=headers)
    headers.update({"Digest": f"sha-256={storage.b64(entry.sha256)}", "Content-Length": str(entry.size)})
    return StreamingResponse(_file_body(fd, 0, entry.size), headers=headers)


def routes(deployment) -> list[Route]:
    storage.install(deployment)
    return [
        Route("/api/storage/upload", upload, methods=["POST"]),
        Route("/api/storage/{uuid}", download, methods=["GET"]),
    ]
