"""File storage: blobs on disk, metadata in `_storage` (PROTOCOL §3.4, §8.2; QUERIES §1.3).

`StorageService` is what `ctx.storage` calls (`runner.services.storage`) and what the upload
and download routes (`storage_http.py`) use.

Layout: `DATA_DIR/storage/blobs/<key>` holds each file's bytes, `DATA_DIR/storage/tmp/` the
uploads in progress (a private temporary directory for in-memory deployments). A `_storage`
document `{sha256 (base64), size, contentType | null}` is the public face of a file; the private
system table `_storage_blobs` maps it to its download UUID and its blob key. The UUID is what
download URLs carry (`/api/storage/<uuid>`), as on Convex, never the document id.

Uploads stream to a temporary file while sha256 and size are computed, and are moved into
place (an atomic rename) before the document is inserted; any failure removes the temporary
file. A deleted file's blob is removed once the deleting transaction has committed; at start
the service removes leftover temporary files and blobs that no document points to.

Upload tokens are `base64url(JSON {i: issued seconds, n: instance}) "." base64url(HMAC-SHA256)`
with a per-deployment secret (kept in `storage/secret` for a data directory): a forged or
altered token fails the HMAC; a token older than one hour by the deployment's clock expired.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console import ids, values
from console.streamed_files import HashingWriter
from console.emulator.engine import IndexDefinition
from console.emulator.errors import ApiError, ConvexEngineError

log = logging.getLogger(__name__)

STORAGE_TABLE = "_storage"
BLOBS_TABLE = "_storage_blobs"  # private: {storageId, uuid, key}
BY_STORAGE_ID = "by_storage_id"
BY_UUID = "by_uuid"
UPLOAD_TOKEN_VALIDITY_S = 60 * 60  # STORE_FILE_AUTHORIZATION_VALIDITY

INVALID_STORAGE_ID = (
    "Invalid storage ID: \"{id}\". Storage ID should be an\n"
    "                    Id of '_storage' table, or a UUID string."
)
WRONG_TABLE = "Invalid storage ID. Storage ID cannot be an ID on any table other than '_storage'."


# ---------------------------------------------------------------------------
# Digests


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def parse_digest_header(value: str | None) -> bytes | None:
    """`Digest: sha-256=<base64>` -> the 32 raw bytes; malformed -> 400 BadHeader as Convex."""
    if value is None:
        return None
    bad = ApiError(400, "BadHeader", "Bad header for digest: invalid HTTP header")
    if not value.startswith("sha-256="):
        raise bad
    try:
        digest = base64.b64decode(value[len("sha-256="):].strip(), validate=True)
    except (binascii.Error, ValueError):
        raise bad from None
    if len(digest) != 32:
        raise bad
    return digest


def mismatch_error(expected: bytes, actual: bytes) -> ApiError:
    return ApiError(400, "Sha256Mismatch", f"Sha256 mismatch. Expected: {b64(expected)} Actual: {b64(actual)}")


# ---------------------------------------------------------------------------
# Upload tokens


class UploadTokens:
    def __init__(self, secret: bytes, instance_name: str, clock):
        self._secret = secret
        self._instance = instance_name
        self._clock = clock

    def _now_s(self) -> int:
        return int(self._clock.now_ms() // 1000)

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()

    def issue(self) -> str:
        payload = json.dumps({"i": self._now_s(), "n": self._instance}, separators=(",", ":")).encode()
        return f"{_b64url(payload)}.{_b64url(self._mac(payload))}"

    def check(self, token: str) -> None:
        """Raise 401 StorageTokenInvalid / InvalidStorageToken / StorageTokenExpired as Convex."""
        invalid = ApiError(401, "StorageTokenInvalid", "Couldn't decode the StoreFileAuthorization token")
        payload_text, _, mac_text = token.partition(".")
        try:
            payload, mac = _unb64url(payload_text), _unb64url(mac_text)
        except (binascii.Error, ValueError):
            raise invalid from None
        if not payload or not hmac.compare_digest(mac, self._mac(payload)):
            raise invalid
        try:
            claims = json.loads(payload)
            issued, instance = int(claims["i"]), str(claims["n"])
        except (ValueError, KeyError, TypeError):
            raise invalid from None
        if instance != self._instance:
            raise ApiError(401, "InvalidStorageToken", f"Storage token is for invalid instance {instance}")
        if issued + UPLOAD_TOKEN_VALIDITY_S <= self._now_s():
            raise ApiError(401, "StorageTokenExpired", "Store File Authorization expired")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---------------------------------------------------------------------------
# Streaming a blob to disk


class BlobWriter(HashingWriter):
    """An upload in progress: a temporary file under the service's tmp dir (see HashingWriter)."""

    def __init__(self, tmp_dir: Path):
        fd, name = tempfile.mkstemp(prefix="upload-", dir=tmp_dir)
        self.path = Path(name)
        super().__init__(fd, thread_name="blob-writer")

    async def discard(self) -> None:
        """Remove the temporary file (run shielded: it waits for a write still in progress)."""
        try:
            await self.abort()
        finally:
            self.discard_now()

    def discard_now(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------
# The service


@dataclass
class FileEntry:
    doc: dict  # the `_storage` document
    blob: dict  # the `_storage_blobs` row

    @property
    def storage_id(self) -> str:
        return self.doc["_id"]

    @property
    def uuid(self) -> str:
        return self.blob["uuid"]

    @property
    def key(self) -> str:
        return self.blob["key"]

    @property
    def size(self) -> int:
        return int(self.doc["size"])

    @property
    def content_type(self) -> str | None:
        return self.doc.get("contentType")

    @property
    def sha256(self) -> bytes:
        return base64.b64decode(self.doc["sha256"])


def ensure_tables(db) -> None:
    db.define_system_table(STORAGE_TABLE, [])
    db.define_system_table(BLOBS_TABLE, [
        IndexDefinition(BY_STORAGE_ID, ["storageId"]),
        IndexDefinition(BY_UUID, ["uuid"]),
    ])


def _eq_query(index: str, field: str, value: Any) -> dict:
    source = {
        "type": "IndexRange",
        "indexName": f"{BLOBS_TABLE}.{index}",
        "range": [{"type": "Eq", "fieldPath": field, "value": values.encode(value)}],
        "order": "asc",
    }
    return {"source": source, "operators": [{"limit": 1}]}


def _first(tx, query: dict) -> dict | None:
    found = tx.collect(query)
    return found[0] if found else None


class StorageService:
    def __init__(self, deployment, root: Path, secret: bytes, *, temporary: bool):
        self.deployment = deployment
        self.db = deployment.db
        self.root = root
        self.blobs_dir = root / "blobs"
        self.tmp_dir = root / "tmp"
        self.blobs_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.temporary = temporary
        self.tokens = UploadTokens(secret, deployment.instance_name, deployment.clock)
        self._pending_deletes: list[tuple[Any, str, str]] = []  # (tx, blob row id, key)
        self._lock = threading.Lock()
        self._sweeper = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="storage-sweep")
        self.closed = False
        self._remove_listener = self.db.add_commit_listener(self._on_commit)
        if temporary:
            weakref.finalize(self, shutil.rmtree, str(root), True)

    # -- URLs ----------------------------------------------------------------------------------
    @property
    def origin(self) -> str:
        return self.deployment.cloud_url

    def generate_upload_url(self) -> str:
        return f"{self.origin}/api/storage/upload?token={self.tokens.issue()}"

    def url_for(self, file_uuid: str) -> str:
        return f"{self.origin}/api/storage/{file_uuid}"

    def blob_path(self, key: str) -> Path:
        return self.blobs_dir / key

    # -- lookups -------------------------------------------------------------------------------
    def _resolve(self, tx, storage_id: Any, op: str) -> FileEntry | None:
        if not isinstance(storage_id, str):
            raise ConvexEngineError(
                f"Invalid argument `storageId` for `{op}`: expected a string, got {values.type_name(storage_id)}"
            )
        if ids.is_id(storage_id):
            if tx.normalize_id(STORAGE_TABLE, storage_id) is None:
                raise ConvexEngineError(WRONG_TABLE)
            doc = tx.get(storage_id, table=STORAGE_TABLE, is_system=True)
            if doc is None:
                return None
            blob = _first(tx, _eq_query(BY_STORAGE_ID, "storageId", storage_id))
        else:
            try:
                legacy = str(uuid.UUID(storage_id))
            except ValueError:
                message = INVALID_STORAGE_ID.format(id=storage_id)
                raise ConvexEngineError(f"Invalid argument `storageId` for `{op}`: {message}") from None
            blob = _first(tx, _eq_query(BY_UUID, "uuid", legacy))
            doc = tx.get(blob["storageId"], table=STORAGE_TABLE, is_system=True) if blob else None
        if doc is None or blob is None:
            return None
        return FileEntry(doc, blob)

    def _in_tx(self, tx, fn, *, write: bool = False):
        if tx is not None:
            return fn(tx)
        if write:
            return self.db.write(fn)[0]
        return self.db.read(fn)

    def entry_by_uuid(self, file_uuid: str) -> FileEntry | None:
        def read(tx):
            blob = _first(tx, _eq_query(BY_UUID, "uuid", file_uuid))
            doc = tx.get(blob["storageId"], table=STORAGE_TABLE, is_system=True) if blob else None
            return FileEntry(doc, blob) if doc else None

        return self.db.read(read)

    # -- ctx.storage ---------------------------------------------------------------------------
    def get_url(self, storage_id: Any, *, tx=None) -> str | None:
        entry = self._in_tx(tx, lambda t: self._resolve(t, storage_id, "storage.getUrl"))
        return None if entry is None else self.url_for(entry.uuid)

    def get_metadata(self, storage_id: Any, *, tx=None) -> dict | None:
        entry = self._in_tx(tx, lambda t: self._resolve(t, storage_id, "storage.getMetadata"))
        if entry is None:
            return None
        return {
            "storageId": entry.uuid,
            "sha256": entry.sha256.hex(),
            "size": entry.size,
            "contentType": entry.content_type,
        }

    def delete(self, storage_id: Any, *, tx=None) -> None:
        def remove(t):
            entry = self._resolve(t, storage_id, "storage.delete")
            if entry is None:
                raise ConvexEngineError(f"storage id {storage_id} not found")
            t.remove(entry.storage_id, table=STORAGE_TABLE, is_system=True)
            t.remove(entry.blob["_id"], table=BLOBS_TABLE, is_system=True)
            return entry

        if tx is not None:
            entry = remove(tx)
            with self._lock:
                self._pending_deletes.append((tx, entry.blob["_id"], entry.key))
            return
        entry = self.db.write(remove)[0]
        self._unlink_blob(entry.key)

    def get(self, storage_id: Any) -> bytes | None:
        entry = self._in_tx(None, lambda t: self._resolve(t, storage_id, "storage.get"))
        if entry is None:
            return None
        try:
            return self.blob_path(entry.key).read_bytes()
        except FileNotFoundError:  # deleted since the lookup
            return None

    def store(self, data: bytes, content_type: str | None = None) -> str:
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ConvexEngineError(f"storage.store expects bytes, got {type(data).__name__}")
        writer = BlobWriter(self.tmp_dir)
        try:
            digest = writer.write_all(bytes(data))
            return self.commit_upload(writer, digest, content_type)
        finally:
            writer.discard_now()  # no-op once the blob was moved into place

    # -- uploads -------------------------------------------------------------------------------
    def new_writer(self) -> BlobWriter:
        return BlobWriter(self.tmp_dir)

    def commit_upload(self, writer: BlobWriter, digest: bytes, content_type: str | None) -> str:
        """Move the finished temporary file into place and insert its documents."""
        key = uuid.uuid4().hex
        target = self.blob_path(key)
        if not self.temporary:
            _fsync_path(writer.path)
        os.replace(writer.path, target)
        try:
            return self.db.write(lambda tx: self._insert(tx, key, digest, writer.size, content_type))[0]
        except BaseException:
            self._unlink_blob(key)
            raise

    def _insert(self, tx, key: str, digest: bytes, size: int, content_type: str | None) -> str:
        storage_id = tx.insert(
            STORAGE_TABLE, {"sha256": b64(digest), "size": float(size), "contentType": content_type}, system=True
        )
        tx.insert(BLOBS_TABLE, {"storageId": storage_id, "uuid": str(uuid.uuid4()), "key": key}, system=True)
        return storage_id

    # -- blob garbage collection ---------------------------------------------------------------
    def _unlink_blob(self, key: str) -> None:
        try:
            self.blob_path(key).unlink()
        except FileNotFoundError:
            pass

    def _on_commit(self, commit) -> None:
        # Runs under the commit lock: only hand the work to the sweeper thread.
        if BLOBS_TABLE in commit.tables and self._pending_deletes and not self.closed:
            try:
                self._sweeper.submit(self._sweep)
            except RuntimeError:  # shut down meanwhile
                pass

    def _sweep(self) -> None:
        with self._lock:
            done = [item for item in self._pending_deletes if item[0].finished]
            self._pending_deletes = [item for item in self._pending_deletes if not item[0].finished]
        for _tx, row_id, key in done:
            try:
                still_there = self.db.read(lambda t: t.get(row_id, table=BLOBS_TABLE, is_system=True))
            except Exception:  # noqa: BLE001 - the database closed under us
                return
            if still_there is None:  # the delete committed (else it aborted: keep the blob)
                self._unlink_blob(key)

    def sweep_now(self) -> None:
        """Process pending deletes at once (tests; shutdown)."""
        self._sweeper.submit(self._sweep).result()

    def clean_leftovers(self) -> int:
        """Remove temporary uploads and blobs no row points to (after a crash). Returns the count."""
        removed = 0
        for path in self.tmp_dir.iterdir():
            path.unlink(missing_ok=True)
            removed += 1
        rows = self.db.read(lambda tx: tx.collect({
            "source": {"type": "FullTableScan", "tableName": BLOBS_TABLE, "order": "asc"}, "operators": [],
        }))
        known = {row["key"] for row in rows}
        for path in self.blobs_dir.iterdir():
            if path.name not in known:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._remove_listener()
        self._sweeper.shutdown(wait=True)
        if self.temporary:
            shutil.rmtree(self.root, ignore_errors=True)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _load_secret(directory: Path | None) -> bytes:
    if directory is None:
        return secrets.token_bytes(32)
    path = directory / "secret"
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    data = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    return data


# ---------------------------------------------------------------------------
# Plugging into the deployment


def install(deployment) -> StorageService:
    """Create the tables and put the service behind `ctx.storage` (idempotent)."""
    existing = deployment.extras.get("storage")
    if existing is not None:
        return existing
    ensure_tables(deployment.db)
    if deployment.data_dir is not None:
        root = Path(deployment.data_dir) / "storage"
        root.mkdir(parents=True, exist_ok=True)
        service = StorageService(deployment, root, _load_secret(root), temporary=False)
    else:
        root = Path(tempfile.mkdtemp(prefix="convex-console-storage-"))
        service = StorageService(deployment, root, _load_secret(None), temporary=True)
    deployment.runner.services.storage = service
    deployment.extras["storage"] = service
    return service


async def start(deployment):
    """`SERVICES` entry: clean what a crash left behind; the stop closes the service."""
    service = install(deployment)
    removed = await asyncio.get_running_loop().run_in_executor(None, service.clean_leftovers)
    if removed:
        log.info("storage: removed %d leftover file(s)", removed)

    async def stop() -> None:
        service.close()

    return stop
