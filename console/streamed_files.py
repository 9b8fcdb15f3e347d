"""Streaming files to and from the network: disk and hashing work off the event loop.

Writing: `HashingWriter` is what the emulator's uploads (console/emulator/storage.py BlobWriter)
and the console's downloads (console/transfers.py) write through; `DirectFile` below it writes
with O_DIRECT where the filesystem allows: these files are written once and not read back soon.

Reading: `read_ahead` runs a reader on a thread of its own a few chunks ahead of the network
(the console's uploads, the emulator's downloads); `DirectReader` reads a blob past the cache.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import errno
import hashlib
import mmap
import os
import queue
import threading
from typing import AsyncIterator, Callable, TypeVar

T = TypeVar("T")

DIRECT_ALIGN = 4096  # offsets, lengths and buffer addresses of O_DIRECT reads and writes
DIRECT_BUFFER = 1 << 20
DIRECT_BUFFERS = 3  # one being filled, the others queued for or being written to the disk


def _write_fully(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class DirectFile:
    """A file written front to back that bypasses the page cache where the filesystem allows.

    A buffered write of a large file costs a copy into the page cache and then the kernel's
    writeback: 1.4-2.4 s of CPU per GiB on our 2-core machines, against 0.15 s with O_DIRECT
    (bench/README.md, issue 7). An uploaded blob or a downloaded file is not read back soon,
    so caching it buys nothing.

    Bytes are copied into page-aligned buffers; a full buffer goes to the file's I/O thread,
    which waits on the disk while the caller fills the next one. The last partial block is
    written padded and the file truncated to its size. Where O_DIRECT is refused (tmpfs on
    older kernels, macOS, a short write on a full disk) the I/O thread goes on with ordinary
    writes. Not thread-safe: one caller at a time.
    """

    def __init__(self, fd: int):
        self.fd = fd
        self.size = 0
        self.direct = _enable_direct(fd)
        self._current: mmap.mmap | None = None
        self._filled = 0
        self._error: OSError | None = None
        self._io: threading.Thread | None = None
        if self.direct:
            # Anonymous mappings are page-aligned, as O_DIRECT wants its buffers.
            self._free: queue.SimpleQueue = queue.SimpleQueue()
            self._full: queue.SimpleQueue = queue.SimpleQueue()
            for _ in range(DIRECT_BUFFERS):
                self._free.put(mmap.mmap(-1, DIRECT_BUFFER))
            self._io = threading.Thread(target=self._write_queued, name="direct-io", daemon=True)
            self._io.start()

    def write(self, data) -> None:
        self.size += len(data)
        if self._io is None:
            _write_fully(self.fd, data)
            return
        view = memoryview(data)
        while view:
            if self._current is None:
                self._current = self._free_buffer()
            take = min(len(view), DIRECT_BUFFER - self._filled)
            self._current[self._filled:self._filled + take] = view[:take]
            self._filled += take
            view = view[take:]
            if self._filled == DIRECT_BUFFER:
                self._queue_current(DIRECT_BUFFER)

    def finish(self) -> None:
        """Write what is left (padded to a block, then truncated to the real size)."""
        if self._io is None:
            return
        if self._filled:
            padded = -(-self._filled // DIRECT_ALIGN) * DIRECT_ALIGN
            self._current[self._filled:padded] = bytes(padded - self._filled)
            self._queue_current(padded)
        self._stop_io()
        if self._error is not None:
            raise self._error
        os.ftruncate(self.fd, self.size)

    def close(self) -> None:
        self._stop_io()
        os.close(self.fd)

    # -- the caller's side ---------------------------------------------------------------------
    def _free_buffer(self) -> mmap.mmap:
        buffer = self._free.get()
        if buffer is None:  # the I/O thread failed
            raise self._error
        return buffer

    def _queue_current(self, length: int) -> None:
        self._full.put((self._current, length))
        self._current, self._filled = None, 0

    def _stop_io(self) -> None:
        if self._io is None:
            return
        self._full.put(None)
        self._io.join()
        self._io = None
        if self._current is not None:
            self._current.close()
            self._current = None
        while not self._free.empty():
            buffer = self._free.get()
            if buffer is not None:
                buffer.close()

    # -- the I/O thread ------------------------------------------------------------------------
    def _write_queued(self) -> None:
        while (item := self._full.get()) is not None:
            buffer, length = item
            if self._error is None:
                try:
                    self._write_buffer(buffer, length)
                except OSError as error:
                    # Without its traceback: the frames would keep views of the buffer alive.
                    self._error = error.with_traceback(None)
            # After a failure the caller gets None (and raises); the buffer goes with its last reference.
            self._free.put(buffer if self._error is None else None)

    def _write_buffer(self, buffer: mmap.mmap, length: int) -> None:
        with memoryview(buffer) as whole, whole[:length] as view:
            written = 0
            if self.direct:
                try:
                    written = os.write(self.fd, view)
                except OSError as error:
                    if error.errno != errno.EINVAL:  # EINVAL: the flag was taken, not this write
                        raise
                if written < length:  # short or refused: ordinary writes from here on
                    self._stop_direct()
            with view[written:] as rest:
                _write_fully(self.fd, rest)

    def _stop_direct(self) -> None:
        _disable_direct(self.fd)
        self.direct = False


def _disable_direct(fd: int) -> None:
    import fcntl

    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)


def _enable_direct(fd: int) -> bool:
    if not hasattr(os, "O_DIRECT"):
        return False
    import fcntl

    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_DIRECT)
    except OSError:
        return False
    return True


WRITE_BATCH = 2 << 20  # bytes handed to the writer thread at once
WRITE_DEPTH = 4  # batches the writer thread may be behind the event loop


class HashingWriter:
    """Chunks received on the event loop, hashed (sha256) and written to `fd` in a thread.

    Batches of ~2 MiB are hashed and written in order on the writer's own thread, up to
    WRITE_DEPTH batches behind the event loop: it only waits when the disk falls that far
    behind, and memory stays flat. `finish()` returns the digest; after a failure or a
    cancellation, `abort()` (shielded) waits for the batches in flight and closes the file.
    """

    def __init__(self, fd: int, *, thread_name: str = "file-writer"):
        self._file = DirectFile(fd)
        self._hash = hashlib.sha256()
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._pending: collections.deque[asyncio.Future] = collections.deque()
        self.size = 0
        self.closed = False

    def _write_batch(self, chunks: list[bytes]) -> None:
        # One join (a fast copy) rather than a hash call per chunk: each call releases the GIL
        # and must win it back from the busy event loop, which costs more for 64 KiB chunks.
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._hash.update(data)
        self._file.write(data)

    async def _wait_pending(self, keep: int = 0) -> None:
        # Shielded: a cancelled caller must not cancel a batch while the thread still writes
        # to the descriptor (`abort` waits for the batches before closing it).
        while len(self._pending) > keep:
            await asyncio.shield(self._pending[0])
            self._pending.popleft()

    async def _flush_buffer(self) -> None:
        await self._wait_pending(keep=WRITE_DEPTH - 1)
        if self._chunks:
            chunks, self._chunks, self._buffered = self._chunks, [], 0
            loop = asyncio.get_running_loop()
            self._pending.append(loop.run_in_executor(self._thread, self._write_batch, chunks))

    async def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        if self._buffered >= WRITE_BATCH or len(self._chunks) >= 1024:
            await self._flush_buffer()

    async def finish(self) -> bytes:
        """Write what is left, close the file; returns the sha256 digest."""
        await self._flush_buffer()
        await self._wait_pending()
        await asyncio.get_running_loop().run_in_executor(self._thread, self._file.finish)
        self.close()
        return self._hash.digest()

    def write_all(self, data: bytes) -> bytes:
        """Synchronous: the whole content at once (`store()` in actions); returns the digest."""
        self._write_batch([data])
        self._file.finish()
        self.size = len(data)
        self.close()
        return self._hash.digest()

    async def abort(self) -> None:
        """Wait for the batches in flight, then close the file (a no-op once closed)."""
        try:
            if self._pending:
                await asyncio.wait(list(self._pending))
        finally:
            self._pending.clear()
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._thread.shutdown(wait=False)
            self._file.close()


# ---------------------------------------------------------------------------
# Reading


READ_CHUNK = 1 << 20
READ_AHEAD = 4  # chunks a reader thread may be ahead of the one being sent


async def read_ahead(read: Callable[[], T], *, depth: int, thread_name: str,
                     close: Callable[[], None] | None = None) -> AsyncIterator[T]:
    """What `read()` returns, called over and over on a thread of its own up to `depth` calls
    ahead of the consumer, until it returns something empty. `close` runs on that thread once
    the reads in progress are over (also when the consumer stops early)."""
    thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
    upcoming: collections.deque[concurrent.futures.Future] = collections.deque()
    try:
        while True:
            while len(upcoming) < depth:
                upcoming.append(thread.submit(read))
            item = await asyncio.wrap_future(upcoming.popleft())
            if not item:
                return
            yield item
    finally:
        # Plain futures: this also works when the generator is finalized after its loop closed.
        for future in upcoming:
            future.cancel()  # reads not started yet
        if close is not None:
            thread.submit(close)
        thread.shutdown(wait=False)


class DirectReader:
    """The bytes [start, start + length) of an open file, chunk by chunk, past the page cache
    where the filesystem allows: a cold read through the cache costs 0.9-1.5 s of CPU per GiB
    here, an O_DIRECT one 0.15 s (aligned reads into one buffer, then copied out)."""

    def __init__(self, fd: int, start: int, length: int, *, chunk_size: int = READ_CHUNK):
        self.fd = fd
        self.position = start
        self.end = start + length
        self.chunk_size = chunk_size
        self._buffer = mmap.mmap(-1, chunk_size + DIRECT_ALIGN) if _enable_direct(fd) else None

    def read(self) -> bytes:
        want = min(self.chunk_size, self.end - self.position)
        if want <= 0:
            return b""
        data = self._read_direct(want) if self._buffer is not None else None
        if data is None:
            data = os.pread(self.fd, want, self.position)
        self.position += len(data)
        return data

    def _read_direct(self, want: int) -> bytes | None:
        aligned = self.position - self.position % DIRECT_ALIGN
        head = self.position - aligned
        span = -(-(head + want) // DIRECT_ALIGN) * DIRECT_ALIGN
        with memoryview(self._buffer) as whole, whole[:span] as view:
            try:
                got = os.preadv(self.fd, [view], aligned)
            except OSError as error:
                if error.errno != errno.EINVAL:
                    raise
            else:
                return bytes(view[head:min(got, head + want)]) if got > head else b""
        # The filesystem took the flag but not the read: ordinary reads from here on.
        _disable_direct(self.fd)
        self._buffer.close()
        self._buffer = None
        return None

    def close(self) -> None:
        if self._buffer is not None:
            self._buffer.close()
            self._buffer = None
        os.close(self.fd)
