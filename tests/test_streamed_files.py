"""Files streamed past the page cache (console/streamed_files.py DirectFile, HashingWriter) and
the emulator's blob writer on top of them: bytes, order, hash, fallback, discard."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console import streamed_files
from console.streamed_files import DIRECT_ALIGN, DIRECT_BUFFER, DirectFile, DirectReader, read_ahead
from console.emulator.storage import BlobWriter

SIZES = [0, 1, DIRECT_ALIGN - 1, DIRECT_ALIGN, DIRECT_ALIGN + 1, DIRECT_BUFFER - 1, DIRECT_BUFFER,
         DIRECT_BUFFER + 1, 3 * DIRECT_BUFFER + 12345]


def _pattern(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB, not all zeros
    return (block * (size // len(block) + 1))[:size]


def _blob_file(path: Path) -> DirectFile:
    return DirectFile(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))


@pytest.mark.parametrize("size", SIZES)
def test_sizes_around_block_and_buffer_edges(tmp_path, size):
    data = _pattern(size)
    blob = _blob_file(tmp_path / "blob")
    for start in range(0, size, 100_000):  # chunks that straddle the buffer's edges
        blob.write(data[start:start + 100_000])
    blob.finish()
    blob.close()
    assert (tmp_path / "blob").read_bytes() == data


def _filesystem_takes_o_direct(directory: Path) -> bool:
    if not hasattr(os, "O_DIRECT"):
        return False
    try:
        fd = os.open(directory / "probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError:
        return False
    os.close(fd)
    return True


def test_direct_io_is_used_where_the_filesystem_allows(tmp_path):
    blob = _blob_file(tmp_path / "blob")
    try:
        assert blob.direct == _filesystem_takes_o_direct(tmp_path)
    finally:
        blob.close()


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="O_DIRECT is Linux's")
@pytest.mark.parametrize("failure", ["einval", "short"])
def test_a_refused_or_short_direct_write_falls_back_without_losing_bytes(tmp_path, monkeypatch, failure):
    real_write = os.write
    calls = {"direct": 0}

    def write(fd, data):
        if calls["direct"] == 0 and len(data) == DIRECT_BUFFER:
            calls["direct"] += 1
            if failure == "einval":
                raise OSError(errno.EINVAL, "Invalid argument")
            return real_write(fd, memoryview(data)[:DIRECT_ALIGN])  # a full disk's short count
        return real_write(fd, data)

    monkeypatch.setattr(streamed_files.os, "write", write)
    data = _pattern(2 * DIRECT_BUFFER + 777, seed=1)
    blob = _blob_file(tmp_path / "blob")
    assert blob.direct
    blob.write(data[:DIRECT_BUFFER + 5])
    blob.write(data[DIRECT_BUFFER + 5:])
    blob.finish()
    blob.close()
    assert not blob.direct  # given up after the first refused write
    assert calls["direct"] == 1
    assert (tmp_path / "blob").read_bytes() == data


def test_other_write_errors_are_raised(tmp_path, monkeypatch):
    def write(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(streamed_files.os, "write", write)
    blob = _blob_file(tmp_path / "blob")
    with pytest.raises(OSError) as caught:
        blob.write(_pattern(DIRECT_BUFFER))
        blob.finish()
    assert caught.value.errno == errno.ENOSPC
    blob.close()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=600_000), max_size=12), st.integers(0, 1000))
def test_blob_writer_keeps_bytes_order_and_hash(chunk_sizes, seed):
    data = _pattern(sum(chunk_sizes), seed)

    async def upload(tmp_dir: Path) -> tuple[bytes, Path, int]:
        writer = BlobWriter(tmp_dir)
        start = 0
        for size in chunk_sizes:
            await writer.write(data[start:start + size])
            start += size
        return await writer.finish(), writer.path, writer.size

    with tempfile.TemporaryDirectory() as tmp:
        digest, path, size = asyncio.run(upload(Path(tmp)))
        assert size == len(data)
        assert digest == hashlib.sha256(data).digest()
        assert path.read_bytes() == data


def test_store_path_writes_whole_bytes(tmp_path):
    data = _pattern(DIRECT_BUFFER + 3)
    writer = BlobWriter(tmp_path)
    digest = writer.write_all(data)
    assert digest == hashlib.sha256(data).digest()
    assert writer.path.read_bytes() == data
    writer.discard_now()
    assert not writer.path.exists()


def test_discard_after_a_cancelled_upload_removes_the_file(tmp_path):
    async def upload() -> Path:
        writer = BlobWriter(tmp_path)
        for _ in range(8):  # more batches than the writer may be behind
            await writer.write(_pattern(streamed_files.WRITE_BATCH))
        await writer.discard()
        return writer.path

    path = asyncio.run(upload())
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


# --- reading ------------------------------------------------------------------------------------


def _reader(path: Path, start: int, length: int, chunk_size: int = DIRECT_BUFFER) -> DirectReader:
    return DirectReader(os.open(path, os.O_RDONLY), start, length, chunk_size=chunk_size)


def _read_all(reader: DirectReader) -> bytes:
    parts = []
    while chunk := reader.read():
        parts.append(chunk)
    reader.close()
    return b"".join(parts)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 3 * DIRECT_BUFFER), st.data())
def test_direct_reader_returns_exactly_the_range(size, data):
    start = data.draw(st.integers(0, size))
    length = data.draw(st.integers(0, size - start + 10_000))  # may run past the end of the file
    chunk = data.draw(st.sampled_from([DIRECT_ALIGN, 64 * 1024, DIRECT_BUFFER]))
    content = _pattern(size, seed=size)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "blob"
        path.write_bytes(content)
        assert _read_all(_reader(path, start, length, chunk)) == content[start:start + length]


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="O_DIRECT is Linux's")
def test_direct_reader_falls_back_when_a_read_is_refused(tmp_path, monkeypatch):
    def refused(fd, buffers, offset):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(streamed_files.os, "preadv", refused)
    content = _pattern(DIRECT_BUFFER + 123)
    (tmp_path / "blob").write_bytes(content)
    assert _read_all(_reader(tmp_path / "blob", 5, len(content))) == content[5:]


def test_read_ahead_stops_and_closes_when_the_consumer_stops():
    calls, closed = [], threading.Event()

    def read():
        calls.append(1)
        return b"x"

    async def consume() -> None:
        items = read_ahead(read, depth=3, thread_name="test-reader", close=closed.set)
        async for _ in items:
            if len(calls) >= 5:
                break
        await items.aclose()

    asyncio.run(consume())
    assert closed.wait(5), "close never ran on the reader's thread"
    reads = len(calls)
    assert reads <= 5 + 3  # no more than `depth` reads past what was taken
    assert len(calls) == reads  # and none after close


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="O_DIRECT is Linux's")
def test_disk_full_after_a_short_write_is_raised_cleanly(tmp_path, monkeypatch):
    real_write = os.write
    calls = {"n": 0}

    def short_then_full(fd, data):
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, memoryview(data)[:DIRECT_ALIGN])  # short: the disk is filling up
        raise OSError(errno.ENOSPC, "No space left on device")

    thread_errors = []
    monkeypatch.setattr(threading, "excepthook", thread_errors.append)
    monkeypatch.setattr(streamed_files.os, "write", short_then_full)
    blob = _blob_file(tmp_path / "blob")
    with pytest.raises(OSError) as caught:
        blob.write(_pattern(2 * DIRECT_BUFFER))
        blob.finish()
    blob.close()
    assert caught.value.errno == errno.ENOSPC
    assert thread_errors == []  # the I/O thread ended cleanly
