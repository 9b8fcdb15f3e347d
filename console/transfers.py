"""Streaming file uploads and downloads with progress and integrity checks (PROTOCOL §3.4).

Used through `DeploymentClient.upload_path` / `download_to_path`. Both speak only the public
protocol (an upload URL from `generateUploadUrl`, a download URL from `getFile`/`getUrl`), so
they work the same against Convex Cloud, a self-hosted backend or the emulator.

Memory stays flat: a few MiB at most are in flight. The disk and hashing work runs in a worker
thread, in order, while the network moves the bytes before (or after) it. Cancelling the calling task stops the transfer: the server drops
the partial upload, a partial download's `.part` file is removed.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import mimetypes
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterator, Callable

import httpx

from console.client import ClientError, Unreachable, _raise_for_status, _transport_reason
from console.streamed_files import HashingWriter, read_ahead

if TYPE_CHECKING:
    from console.client import DeploymentClient

# Uploads are sent in 256 KiB chunks: a socket usually takes one whole, where a larger chunk is
# split and its rest copied into the transport's buffer. The reader thread reads and hashes
# READ_BATCH chunks per job (fewer thread hand-offs), READ_AHEAD jobs ahead of the network.
UPLOAD_CHUNK = 1 << 18
READ_BATCH = 4
READ_AHEAD = 2
UPLOAD_RESPONSE_TIMEOUT = 300.0  # the server moves and records the file after the last byte


class LocalFileError(ClientError):
    """The local file cannot be used: missing, a directory, unreadable, or changed while sent."""


class IntegrityError(ClientError):
    """The bytes that arrived are not the bytes that were sent (sha256 differs)."""


@dataclass
class TransferProgress:
    """Bytes moved so far; `total` is None when the size is unknown."""

    done: int
    total: int | None
    elapsed: float  # seconds since the transfer started

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return 1.0 if self.total == 0 else None
        return min(self.done / self.total, 1.0)

    @property
    def percent(self) -> float | None:
        fraction = self.fraction
        return None if fraction is None else fraction * 100

    @property
    def throughput(self) -> float:
        """Bytes per second."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current throughput (None when unknown)."""
        if self.total is None or self.throughput <= 0:
            return None
        return max(self.total - self.done, 0) / self.throughput


ProgressCallback = Callable[[TransferProgress], None]


@dataclass
class UploadResult:
    storage_id: str
    size: int
    sha256: str  # base64, as `_storage.sha256`
    content_type: str | None
    elapsed: float
    verified: bool  # the deployment's sha256 was read back and matched


@dataclass
class DownloadResult:
    path: Path
    size: int
    sha256: str  # base64
    elapsed: float
    verified: bool  # a `Digest` header was present and matched
    content_type: str | None = None


# ---------------------------------------------------------------------------
# Formatting helpers (shared by the UI)


def human_size(size: float | None) -> str:
    if size is None:
        return "?"
    size = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def describe_progress(progress: TransferProgress) -> str:
    """`12.0 MiB / 50.0 MiB · 24% · 8.1 MiB/s · ETA 00:05`."""
    total = human_size(progress.total) if progress.total is not None else "?"
    percent = f"{progress.percent:.0f}%" if progress.percent is not None else "?%"
    return (
        f"{human_size(progress.done)} / {total} · {percent} · "
        f"{human_size(progress.throughput)}/s · ETA {human_duration(progress.eta)}"
    )


# ---------------------------------------------------------------------------
# Local files


def check_source(path: str | os.PathLike) -> tuple[Path, int]:
    """The file to upload and its size, or LocalFileError with a one-line reason."""
    text = os.fspath(path).strip() if isinstance(path, str) else os.fspath(path)
    if not text:
        raise LocalFileError("No file given: type the path of a file to upload")
    source = Path(text).expanduser()
    try:
        stat = source.stat()
    except FileNotFoundError:
        raise LocalFileError(f"No such file: {source}") from None
    except PermissionError:
        raise LocalFileError(f"Cannot read {source}: permission denied") from None
    except OSError as error:
        raise LocalFileError(f"Cannot read {source}: {error.strerror or error}") from None
    if source.is_dir():
        raise LocalFileError(f"{source} is a directory, not a file")
    if not os.access(source, os.R_OK):
        raise LocalFileError(f"Cannot read {source}: permission denied")
    return source, stat.st_size


def guess_content_type(path: Path) -> str | None:
    return mimetypes.guess_type(path.name)[0]


@dataclass
class _Meter:
    total: int | None
    callback: ProgressCallback | None
    started: float = field(default_factory=time.monotonic)
    done: int = 0

    def add(self, count: int) -> None:
        self.done += count
        self.report()

    def report(self) -> None:
        if self.callback is not None:
            self.callback(TransferProgress(self.done, self.total, time.monotonic() - self.started))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class FileChunks:
    """An async iterator over a file's chunks that hashes and counts them as they are read.

    Chunks are read (and hashed) in order on the transfer's own thread, a few ahead of the one
    being sent. A read error or a file that shrinks or grows while being sent ends the iteration
    with a LocalFileError (kept in `.error`, since the HTTP library may wrap it).
    """

    def __init__(self, path: Path, size: int, meter: _Meter, chunk_size: int = UPLOAD_CHUNK):
        self.path = path
        self.size = size
        self.meter = meter
        self.chunk_size = chunk_size
        self.hash = hashlib.sha256()
        self.error: LocalFileError | None = None
        self.read = 0

    def _read_batch(self, file) -> list[bytes]:
        """The next READ_BATCH chunks (fewer at the end of the file, none past it), hashed."""
        chunks = []
        for _ in range(READ_BATCH):
            chunk = file.read(self.chunk_size)
            if not chunk:
                break
            self.hash.update(chunk)
            chunks.append(chunk)
        return chunks

    def _fail(self, message: str) -> LocalFileError:
        self.error = LocalFileError(message)
        return self.error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            file = open(self.path, "rb")
        except OSError as error:
            raise self._fail(f"Cannot read {self.path}: {error.strerror or error}") from None
        batches = read_ahead(functools.partial(self._read_batch, file), depth=READ_AHEAD,
                             thread_name="upload-reader", close=file.close)
        try:
            async for chunks in batches:
                for chunk in chunks:
                    self.read += len(chunk)
                    if self.read > self.size:
                        raise self._fail(f"{self.path} grew while it was being uploaded; upload it again")
                    yield chunk
                    self.meter.add(len(chunk))
        except OSError as error:
            raise self._fail(f"Cannot read {self.path} after {self.read} bytes: {error.strerror or error}") from None
        finally:
            await batches.aclose()  # the reader thread stops and closes the file
        if self.read != self.size:
            raise self._fail(
                f"{self.path} changed while it was being uploaded ({self.read} of {self.size} bytes read); "
                "upload it again"
            )

    @property
    def sha256(self) -> str:
        return base64.b64encode(self.hash.digest()).decode("ascii")


# ---------------------------------------------------------------------------
# Upload


async def upload_path(
    client: "DeploymentClient",
    path: str | os.PathLike,
    *,
    content_type: str | None = None,
    upload_url: str | None = None,
    on_progress: ProgressCallback | None = None,
    verify: bool = True,
    chunk_size: int = UPLOAD_CHUNK,
) -> UploadResult:
    source, size = check_source(path)
    content_type = content_type or guess_content_type(source)
    url = upload_url or await client.generate_upload_url()
    meter = _Meter(size, on_progress)
    meter.report()
    chunks = FileChunks(source, size, meter, chunk_size)
    headers = {"Content-Length": str(size)}
    if content_type:
        headers["Content-Type"] = content_type
    timeout = httpx.Timeout(client.timeout, connect=min(client.timeout, 5.0), read=max(client.timeout, UPLOAD_RESPONSE_TIMEOUT))
    try:
        response = await client._http.post(url, content=chunks, headers=headers, timeout=timeout)
    except LocalFileError:
        raise
    except httpx.TransportError as exc:
        if chunks.error is not None:
            raise chunks.error from None
        raise Unreachable(_origin(url), f"{_transport_reason(exc)} during the upload; nothing was stored") from None
    except Exception:
        if chunks.error is not None:
            raise chunks.error from None
        raise
    _raise_for_status(response)
    storage_id = response.json()["storageId"]
    verified = False
    if verify:
        verified = await _verify_upload(client, storage_id, chunks.sha256)
    return UploadResult(storage_id, size, chunks.sha256, content_type, meter.elapsed, verified)


async def _verify_upload(client: "DeploymentClient", storage_id: str, local_sha256: str) -> bool:
    # Deployments show `_storage.sha256` in base64, or in hex to clients they take for npm < 1.9.
    from console.client import AuthError

    try:
        stored = await client.get_file(storage_id)
    except AuthError:
        return False  # no admin key: cannot read `_storage`
    if stored is None:
        raise IntegrityError(f"The deployment did not keep the upload ({storage_id} not found)")
    accepted = {local_sha256, base64.b64decode(local_sha256).hex()}
    if stored.get("sha256") not in accepted:
        await client.delete_file(storage_id)
        raise IntegrityError(
            f"sha256 mismatch after upload: local {local_sha256}, deployment {stored.get('sha256')}; "
            "the stored copy was deleted"
        )
    return True


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode()}"


# ---------------------------------------------------------------------------
# Download


def check_target(path: str | os.PathLike, *, overwrite: bool) -> Path:
    text = os.fspath(path).strip() if isinstance(path, str) else os.fspath(path)
    if not text:
        raise LocalFileError("No target path given: type where to save the file")
    target = Path(text).expanduser()
    if target.is_dir():
        raise LocalFileError(f"{target} is a directory: give a file path to save to")
    if target.exists() and not overwrite:
        raise LocalFileError(f"{target} already exists")
    if not target.parent.is_dir():
        raise LocalFileError(f"No such directory: {target.parent}")
    if not os.access(target.parent, os.W_OK):
        raise LocalFileError(f"Cannot write to {target.parent}: permission denied")
    return target


def parse_digest(value: str | None) -> str | None:
    if value and value.startswith("sha-256="):
        return value[len("sha-256="):].strip()
    return None


async def download_to_path(
    client: "DeploymentClient",
    url: str,
    path: str | os.PathLike,
    *,
    on_progress: ProgressCallback | None = None,
    overwrite: bool = False,
) -> DownloadResult:
    target = check_target(path, overwrite=overwrite)
    partial = target.with_name(target.name + ".part")
    try:
        async with client._http.stream("GET", url) as response:
            if not response.is_success:
                await response.aread()
                _raise_for_status(response)
            total = _int_header(response.headers.get("content-length"))
            expected = parse_digest(response.headers.get("digest"))
            meter = _Meter(total, on_progress)
            meter.report()
            result = await _receive(response, partial, meter)
    except httpx.TransportError as exc:
        partial.unlink(missing_ok=True)
        raise Unreachable(_origin(url), f"{_transport_reason(exc)} during the download") from None
    except OSError as error:  # disk full, directory removed...: nothing half-written stays
        partial.unlink(missing_ok=True)
        raise LocalFileError(f"Cannot write {target}: {error.strerror or error}; nothing was saved") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    sha256, size = result
    if total is not None and size != total:
        partial.unlink(missing_ok=True)
        raise IntegrityError(f"Download ended early: {size} of {total} bytes")
    if expected is not None and expected != sha256:
        partial.unlink(missing_ok=True)
        raise IntegrityError(f"sha256 mismatch: the Digest header says {expected}, the bytes hash to {sha256}")
    os.replace(partial, target)
    return DownloadResult(target, size, sha256, meter.elapsed, expected is not None,
                          response.headers.get("content-type"))


async def _receive(response: httpx.Response, partial: Path, meter: _Meter) -> tuple[str, int]:
    writer = HashingWriter(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666), thread_name="download")
    try:
        async for chunk in response.aiter_bytes():  # as received: re-chunking would copy every byte twice
            await writer.write(chunk)
            meter.add(len(chunk))
        digest = await writer.finish()
    finally:
        await asyncio.shield(writer.abort())  # after a failure: the write in progress ends first
    return base64.b64encode(digest).decode("ascii"), meter.done


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
