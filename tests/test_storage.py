"""File storage end to end: the emulator's upload/download routes, ctx.storage, the admin
fileStorageV2 functions and the console client's streaming transfers (real sockets)."""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import os
import time
from pathlib import Path

import httpx
import pytest

from console.client import ApiError, AuthError, DeploymentClient, FunctionError, Unreachable
from console.connection import Connection
from console.emulator import storage as storage_mod
from console.emulator.functions import action, mutation, query
from console.emulator.server import start_emulator
from console import streamed_files, transfers
from console.transfers import IntegrityError, LocalFileError

HOUR_MS = 60 * 60 * 1000


def connection_for(emulator) -> Connection:
    return Connection.create(emulator.url, site_url=emulator.site_url, admin_key=emulator.admin_key, kind="emulator")


def service(emulator) -> storage_mod.StorageService:
    return emulator.deployment.extras["storage"]


def leftovers(emulator) -> tuple[list[str], list[str]]:
    svc = service(emulator)
    return sorted(p.name for p in svc.tmp_dir.iterdir()), sorted(p.name for p in svc.blobs_dir.iterdir())


def sha_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


async def wait_for(condition, timeout: float = 10.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


@pytest.fixture
def emulator(emulator_factory):
    return emulator_factory()


@pytest.fixture
async def client(emulator):
    async with DeploymentClient(connection_for(emulator)) as c:
        yield c


def write_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------
# Round trips


async def test_upload_download_round_trip(client, emulator, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    source = write_file(tmp_path / "photo.png", data)
    seen = []
    result = await client.upload_path(source, on_progress=seen.append)
    assert result.verified and result.size == len(data) and result.sha256 == sha_b64(data)
    assert result.content_type == "image/png"
    assert seen[0].done == 0 and seen[-1].done == len(data) and seen[-1].percent == 100
    info = await client.get_file(result.storage_id)
    assert info["sha256"] == sha_b64(data) and info["size"] == float(len(data))
    assert info["contentType"] == "image/png" and info["url"].startswith(emulator.url + "/api/storage/")
    target = tmp_path / "copy.png"
    downloaded = await client.download_to_path(info["url"], target)
    assert downloaded.verified and downloaded.sha256 == sha_b64(data) and target.read_bytes() == data
    assert downloaded.content_type == "image/png"
    assert not (tmp_path / "copy.png.part").exists()
    assert leftovers(emulator)[0] == []


async def test_zero_byte_file_and_no_content_type(client, tmp_path):
    source = write_file(tmp_path / "empty", b"")
    result = await client.upload_path(source)
    assert result.size == 0 and result.content_type is None
    info = await client.get_file(result.storage_id)
    assert info["size"] == 0.0 and info["contentType"] is None and info["sha256"] == sha_b64(b"")
    response = httpx.get(info["url"])
    assert response.status_code == 200 and response.content == b"" and "content-type" not in response.headers
    downloaded = await client.download_to_path(info["url"], tmp_path / "empty.out")
    assert downloaded.size == 0 and downloaded.verified


async def test_download_headers_and_ranges(client, tmp_path):
    data = bytes(range(256)) * 40
    result = await client.upload_path(write_file(tmp_path / "a.txt", data), content_type="text/plain")
    url = (await client.get_file(result.storage_id))["url"]
    async with httpx.AsyncClient() as http:
        full = await http.get(url)
        assert full.status_code == 200 and full.content == data
        assert full.headers["content-type"] == "text/plain"
        assert full.headers["content-length"] == str(len(data))
        assert full.headers["digest"] == f"sha-256={sha_b64(data)}"
        assert full.headers["cache-control"] == "private, max-age=2592000"
        assert full.headers["accept-ranges"] == "bytes"
        part = await http.get(url, headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == data[10:20]
        assert part.headers["content-range"] == f"bytes 10-19/{len(data)}" and "digest" not in part.headers
        tail = await http.get(url, headers={"Range": "bytes=-5"})
        assert tail.status_code == 206 and tail.content == data[-5:]
        rest = await http.get(url, headers={"Range": f"bytes={len(data) - 3}-"})
        assert rest.content == data[-3:]
        several = await http.get(url, headers={"Range": "bytes=0-1,5-6"})
        assert several.status_code == 416 and several.content == b""
        beyond = await http.get(url, headers={"Range": f"bytes={len(data) + 10}-"})
        assert beyond.status_code == 416


async def test_digest_header_checked(emulator, client):
    data = b"hello digest"
    url = await client.generate_upload_url()
    good = httpx.post(url, content=data, headers={"Digest": f"sha-256={sha_b64(data)}"})
    assert good.status_code == 200
    bad = httpx.post(url, content=data, headers={"Digest": f"sha-256={sha_b64(b'other')}"})
    assert bad.status_code == 400
    assert bad.json() == {
        "code": "Sha256Mismatch",
        "message": f"Sha256 mismatch. Expected: {sha_b64(b'other')} Actual: {sha_b64(data)}",
    }
    malformed = httpx.post(url, content=data, headers={"Digest": "md5=abc"})
    assert malformed.status_code == 400 and malformed.json()["code"] == "BadHeader"
    assert await client.num_files() == 1
    assert leftovers(emulator)[0] == [] and len(leftovers(emulator)[1]) == 1


async def test_upload_token_expiry_and_forgery(emulator_factory):
    emulator = emulator_factory(clock="manual")
    async with DeploymentClient(connection_for(emulator)) as client:
        url = await client.generate_upload_url()
        emulator.deployment.clock.advance(HOUR_MS - 2000)
        assert httpx.post(url, content=b"in time").status_code == 200
        emulator.deployment.clock.advance(2000)
        expired = httpx.post(url, content=b"late")
        assert expired.status_code == 401
        assert expired.json() == {"code": "StorageTokenExpired", "message": "Store File Authorization expired"}
        fresh = await client.generate_upload_url()
        base, token = fresh.split("?token=")
        payload, mac = token.split(".")
        forged_payload = base64.urlsafe_b64encode(b'{"i":9999999999,"n":"convex-console"}').rstrip(b"=").decode()
        for forged in (f"{forged_payload}.{mac}", f"{payload}.{mac[:-2]}xx", "garbage", ""):
            response = httpx.post(f"{base}?token={forged}", content=b"x")
            assert response.status_code == 401, forged
            assert response.json()["code"] == "StorageTokenInvalid"
        missing = httpx.post(base, content=b"x")
        assert missing.status_code == 400 and missing.json()["code"] == "BadQueryArgs"
        with pytest.raises(AuthError, match="StorageTokenExpired"):
            await client.upload_path(_tmp_file(b"late"), upload_url=url)
        assert await client.num_files() == 1
    other = emulator_factory()
    async with DeploymentClient(connection_for(other)) as other_client:
        foreign = await other_client.generate_upload_url()
    response = httpx.post(emulator.url + "/api/storage/upload?token=" + foreign.split("?token=")[1], content=b"x")
    assert response.status_code == 401


def _tmp_file(data: bytes) -> Path:
    import tempfile

    handle = tempfile.NamedTemporaryFile(delete=False)
    handle.write(data)
    handle.close()
    return Path(handle.name)


# ---------------------------------------------------------------------------
# ctx.storage, delete semantics


def register(emulator, name, fn):
    emulator.deployment.app.register("testing/storage", name, fn)
    return f"testing/storage:{name}"


async def test_delete_semantics(emulator, client, tmp_path):
    result = await client.upload_path(write_file(tmp_path / "f.txt", b"bye"))
    info = await client.get_file(result.storage_id)
    blob_files = leftovers(emulator)[1]
    assert len(blob_files) == 1
    await client.delete_file(result.storage_id)
    assert await client.get_file(result.storage_id) is None
    gone = httpx.get(info["url"])
    assert gone.status_code == 404
    assert gone.json() == {"code": "FileNotFound", "message": f"File {info['url'].rsplit('/', 1)[1]} not found"}
    await wait_for(lambda: leftovers(emulator)[1] == [])
    with pytest.raises(FunctionError, match=f"storage id {result.storage_id} not found"):
        await client.delete_file(result.storage_id)
    doc_id_path = httpx.get(f"{emulator.url}/api/storage/{result.storage_id}")
    assert doc_id_path.status_code == 400 and doc_id_path.json()["code"] == "InvalidStoragePath"


async def test_failed_mutation_keeps_the_file(emulator, client, tmp_path):
    first = await client.upload_path(write_file(tmp_path / "1", b"one"))
    second = await client.upload_path(write_file(tmp_path / "2", b"two"))
    with pytest.raises(FunctionError, match="not found"):
        await client.delete_files([first.storage_id, second.storage_id, first.storage_id])
    assert await client.num_files() == 2
    service(emulator).sweep_now()
    assert len(leftovers(emulator)[1]) == 2
    for item in (first, second):
        info = await client.get_file(item.storage_id)
        assert httpx.get(info["url"]).status_code == 200
    await client.delete_files([first.storage_id, second.storage_id])
    assert await client.num_files() == 0
    await wait_for(lambda: leftovers(emulator)[1] == [])


async def test_ctx_storage_in_functions(emulator, client, tmp_path):
    @query(args={"id": storage_mod_any()})
    def get_url(ctx, args):
        return ctx.storage.get_url(args["id"])

    @query(args={"id": storage_mod_any()})
    def metadata(ctx, args):
        return ctx.storage.get_metadata(args["id"])

    @action(args={"text": storage_mod_any()})
    def store_and_get(ctx, args):
        storage_id = ctx.storage.store(args["text"].encode(), "text/plain")
        return {"id": storage_id, "back": ctx.storage.get(storage_id).decode(), "url": ctx.storage.get_url(storage_id)}

    @mutation(args={"id": storage_mod_any()})
    def delete_then_read(ctx, args):
        ctx.storage.delete(args["id"])
        return ctx.storage.get_url(args["id"])

    paths = {name: register(emulator, name, fn) for name, fn in [
        ("getUrl", get_url), ("metadata", metadata), ("storeAndGet", store_and_get), ("deleteThenRead", delete_then_read)]}
    stored = await client.action(paths["storeAndGet"], {"text": "from an action"})
    assert stored["back"] == "from an action" and stored["url"].startswith(emulator.url)
    assert httpx.get(stored["url"]).content == b"from an action"
    assert await client.query(paths["getUrl"], {"id": stored["id"]}) == stored["url"]
    legacy_uuid = stored["url"].rsplit("/", 1)[1]
    assert await client.query(paths["getUrl"], {"id": legacy_uuid}) == stored["url"]
    meta = await client.query(paths["metadata"], {"id": stored["id"]})
    assert meta == {"storageId": legacy_uuid, "sha256": hashlib.sha256(b"from an action").hexdigest(),
                    "size": 14, "contentType": "text/plain"}
    assert await client.mutation(paths["deleteThenRead"], {"id": stored["id"]}) is None
    assert await client.query(paths["getUrl"], {"id": stored["id"]}) is None
    assert await client.query(paths["metadata"], {"id": stored["id"]}) is None
    with pytest.raises(FunctionError, match="Invalid argument `storageId` for `storage.getUrl`: Invalid storage ID"):
        await client.query(paths["getUrl"], {"id": "not-an-id"})


def storage_mod_any():
    from console.emulator.validators import v

    return v.any()


async def test_get_url_wrong_table_is_an_error(emulator_factory):
    emulator = emulator_factory(seed=20)
    async with DeploymentClient(connection_for(emulator)) as client:
        @query(args={"id": storage_mod_any()})
        def get_url(ctx, args):
            return ctx.storage.get_url(args["id"])

        path = register(emulator, "getUrl", get_url)
        page = await client.cli_table_data("posts", num_items=1)
        with pytest.raises(FunctionError, match="cannot be an ID on any table other than '_storage'"):
            await client.query(path, {"id": page.items[0]["_id"]})


async def test_seed_workflow_through_demo_app(client, tmp_path):
    """The seed's Workflow 4: generateUploadUrl -> POST -> saveFile -> getFileUrl."""
    upload_url = await client.mutation("storage:generateUploadUrl", {})
    result = await client.upload_path(write_file(tmp_path / "notes.txt", b"seed"), upload_url=upload_url)
    file_id = await client.mutation("files:saveFile", {
        "storageId": result.storage_id, "filename": "notes.txt", "contentType": "text/plain"})
    url = await client.query("files:getFileUrl", {"storageId": result.storage_id})
    assert httpx.get(url).content == b"seed"
    listed = await client.query("files:list", {})
    assert [item["_id"] for item in listed] == [file_id]


async def test_file_metadata_paging_and_filters(emulator_factory, tmp_path):
    emulator = emulator_factory(clock="manual")
    async with DeploymentClient(connection_for(emulator)) as client:
        ids, times = [], []
        for index in range(5):
            result = await client.upload_path(write_file(tmp_path / f"f{index}", bytes([index]) * (index + 1)))
            ids.append(result.storage_id)
            times.append((await client.get_file(result.storage_id))["_creationTime"])
            emulator.deployment.clock.advance(1000)
        first = await client.file_metadata(num_items=2)
        assert [f["_id"] for f in first.items] == ids[::-1][:2] and not first.is_done
        second = await client.file_metadata(num_items=2, cursor=first.continue_cursor)
        assert [f["_id"] for f in second.items] == ids[::-1][2:4]
        assert set(first.items[0]) == {"url", "_id", "_creationTime", "sha256", "size", "contentType"}
        window = await client.file_metadata(num_items=10, min_creation_time=times[1], max_creation_time=times[3], order="asc")
        assert [f["_id"] for f in window.items] == ids[1:4]
        assert await client.num_files() == 5


# ---------------------------------------------------------------------------
# Bad input and interrupted transfers


async def test_bad_local_paths(client, tmp_path):
    with pytest.raises(LocalFileError, match="No such file"):
        await client.upload_path(tmp_path / "missing.bin")
    with pytest.raises(LocalFileError, match="is a directory"):
        await client.upload_path(tmp_path)
    with pytest.raises(LocalFileError, match="No file given"):
        await client.upload_path("  ")
    if os.geteuid() != 0:
        locked = write_file(tmp_path / "locked", b"x")
        locked.chmod(0)
        with pytest.raises(LocalFileError, match="permission denied"):
            await client.upload_path(locked)
    with pytest.raises(LocalFileError, match="already exists"):
        await client.download_to_path("http://unused.invalid/x", write_file(tmp_path / "exists", b"x"))
    with pytest.raises(LocalFileError, match="No such directory"):
        await client.download_to_path("http://unused.invalid/x", tmp_path / "nope" / "file")
    assert await client.num_files() == 0


async def test_cancel_mid_upload_leaves_nothing(client, emulator, tmp_path):
    source = tmp_path / "big.bin"
    with open(source, "wb") as file:
        file.truncate(64 * 1024 * 1024)  # sparse
    started = asyncio.Event()

    def progress(p):
        if p.done >= 4 * 1024 * 1024:
            started.set()

    task = asyncio.create_task(client.upload_path(source, on_progress=progress))
    await asyncio.wait_for(started.wait(), 10)
    await wait_for(lambda: leftovers(emulator)[0] != [])  # the server has a temp file
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for(lambda: leftovers(emulator) == ([], []))
    assert await client.num_files() == 0


async def test_file_changing_mid_upload(client, emulator, tmp_path):
    source = tmp_path / "shrinks.bin"
    with open(source, "wb") as file:
        file.truncate(32 * 1024 * 1024)
    truncated = []

    def progress(p):
        if p.done >= 2 * 1024 * 1024 and not truncated:
            truncated.append(True)
            os.truncate(source, 3 * 1024 * 1024)

    with pytest.raises(LocalFileError, match="changed while it was being uploaded"):
        await client.upload_path(source, on_progress=progress)
    await wait_for(lambda: leftovers(emulator) == ([], []))
    assert await client.num_files() == 0


async def test_deployment_going_away_mid_upload(tmp_path):
    data_dir = tmp_path / "deployment"
    emulator = start_emulator(data_dir=data_dir)
    source = tmp_path / "big.bin"
    with open(source, "wb") as file:
        file.truncate(2 * 1024 ** 3)  # sparse; longer than the server's 3 s graceful shutdown
    stopping = []

    def progress(p):
        if p.done >= 8 * 1024 * 1024 and not stopping:
            stopping.append(asyncio.get_running_loop().run_in_executor(None, emulator.stop))

    try:
        # An in-process server may leave its sockets open without reading them once its loop is
        # gone (a real process exit resets them): a short write timeout keeps the test quick.
        async with DeploymentClient(connection_for(emulator), timeout=5) as client:
            with pytest.raises((Unreachable, ApiError)):
                await client.upload_path(source, on_progress=progress)
        await stopping[0]
    finally:
        emulator.stop()
    again = start_emulator(data_dir=data_dir)
    try:
        assert leftovers(again) == ([], [])
        async with DeploymentClient(connection_for(again)) as client:
            assert await client.num_files() == 0
    finally:
        again.stop()


async def test_two_gib_sparse_upload_streams_with_flat_memory(client, emulator, tmp_path):
    """A 2 GiB file (sparse: no real data written): the transfer starts, memory stays flat,
    and cancelling it leaves nothing behind."""
    source = tmp_path / "huge.bin"
    with open(source, "wb") as file:
        file.truncate(2 * 1024 ** 3)
    baseline = _rss()
    peak = [baseline]
    enough = asyncio.Event()

    def progress(p):
        assert p.total == 2 * 1024 ** 3
        peak[0] = max(peak[0], _rss())
        if p.done >= 96 * 1024 * 1024:
            enough.set()

    task = asyncio.create_task(client.upload_path(source, on_progress=progress))
    await asyncio.wait_for(enough.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert peak[0] - baseline < 80 * 1024 * 1024, f"RSS grew by {(peak[0] - baseline) >> 20} MiB"
    await wait_for(lambda: leftovers(emulator) == ([], []))
    assert await client.num_files() == 0


def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def test_download_digest_mismatch_is_refused(client, emulator, tmp_path):
    result = await client.upload_path(write_file(tmp_path / "x", b"original"))
    info = await client.get_file(result.storage_id)
    # Corrupt the blob on disk behind the deployment's back: the Digest no longer matches.
    entry = service(emulator).entry_by_uuid(info["url"].rsplit("/", 1)[1])
    service(emulator).blob_path(entry.key).write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        await client.download_to_path(info["url"], tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.part").exists()


async def test_download_that_cannot_be_written_leaves_nothing(client, tmp_path, monkeypatch):
    result = await client.upload_path(write_file(tmp_path / "x", os.urandom(3 * 1024 * 1024)))
    info = await client.get_file(result.storage_id)
    real_write = os.write

    def disk_full(fd, data):
        if len(data) >= 1024 * 1024:  # the download's 1 MiB blocks, not the event loop's wake-ups
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(streamed_files.os, "write", disk_full)
    with pytest.raises(LocalFileError, match="No space left on device; nothing was saved"):
        await client.download_to_path(info["url"], tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.part").exists()


def test_progress_formatting():
    progress = transfers.TransferProgress(done=12 * 1024 ** 2, total=48 * 1024 ** 2, elapsed=2.0)
    assert progress.percent == 25 and progress.throughput == 6 * 1024 ** 2 and progress.eta == 6.0
    assert transfers.describe_progress(progress) == "12.0 MiB / 48.0 MiB · 25% · 6.0 MiB/s · ETA 00:06"
    assert transfers.TransferProgress(0, 0, 0).percent == 100
    assert transfers.human_size(1023) == "1023 B" and transfers.human_size(2 * 1024 ** 3) == "2.0 GiB"


async def test_data_dir_restart_keeps_files_and_cleans_leftovers(tmp_path):
    data_dir = tmp_path / "deployment"
    first = start_emulator(data_dir=data_dir)
    try:
        async with DeploymentClient(connection_for(first)) as client:
            url = await client.generate_upload_url()
            result = await client.upload_path(write_file(tmp_path / "keep.txt", b"kept"))
            download_url = (await client.get_file(result.storage_id))["url"]
        root = service(first).root
    finally:
        first.stop()
    assert (root / "secret").stat().st_mode & 0o777 == 0o600
    (root / "tmp" / "upload-stale").write_bytes(b"half an upload")
    (root / "blobs" / ("0" * 32)).write_bytes(b"no row points here")
    second = start_emulator(data_dir=data_dir)
    try:
        assert leftovers(second)[0] == [] and len(leftovers(second)[1]) == 1
        async with DeploymentClient(connection_for(second)) as client:
            new_url = (await client.get_file(result.storage_id))["url"]
            assert new_url.rsplit("/", 1)[1] == download_url.rsplit("/", 1)[1]  # the same UUID
            assert httpx.get(new_url).content == b"kept"
            token = url.split("?token=")[1]  # issued before the restart: still valid
            assert httpx.post(f"{second.url}/api/storage/upload?token={token}", content=b"x").status_code == 200
    finally:
        second.stop()
