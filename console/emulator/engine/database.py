"""The document database: catalog, snapshots, serializable commits (OCC), schema and bulk load."""

from __future__ import annotations

import functools
import itertools
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable

from console import ids
from console.emulator.clock import WallClock
from console.emulator.errors import ConvexEngineError

from . import keys, store
from .query import decode_document
from .schema import IndexDefinition, SchemaDefinition, SearchIndexDefinition, TableDefinition
from .transaction import Commit, ConflictError, IndexWrite, Transaction
from .validate import ValidationError, strip_system_fields, validate_value

log = logging.getLogger(__name__)

MAX_WRITE_ATTEMPTS = 10
OPTIMISTIC_ATTEMPTS = 3  # later attempts run holding the commit lock, so they cannot conflict
COMMIT_LOG_SIZE = 2000
DB_FILE_NAME = "db.sqlite3"


def _without_system_fields(validator: dict | None) -> dict | None:
    """The backend ignores top-level `_id`/`_creationTime` in a documentType."""
    if validator is None or validator.get("type") == "any":
        return None
    if validator.get("type") == "object":
        fields = {k: v for k, v in validator["value"].items() if k not in ("_id", "_creationTime")}
        return {"type": "object", "value": fields}
    if validator.get("type") == "union":
        return {"type": "union", "value": [_without_system_fields(v) or {"type": "any"} for v in validator["value"]]}
    return validator


MAX_STATEMENT_PARAMS = 30_000  # below SQLite's default limit of 32766 host parameters


@functools.lru_cache(maxsize=64)
def _insert_sql(target: str, columns: int, rows: int) -> str:
    row = "(" + ",".join("?" * columns) + ")"
    return f"INSERT INTO {target} VALUES " + ",".join([row] * rows)


def _multi_row_inserts(target: str, columns: int, flat_params: list) -> list[tuple[str, list]]:
    """`flat_params` (columns per row) as a few INSERT statements of many rows each."""
    per_statement = (MAX_STATEMENT_PARAMS // columns) * columns
    return [
        (_insert_sql(target, columns, len(chunk) // columns), chunk)
        for chunk in (flat_params[i:i + per_statement] for i in range(0, len(flat_params), per_statement))
    ]


def schema_from_export(text: str) -> SchemaDefinition:
    """Rebuild a SchemaDefinition from its export JSON (what the engine persists)."""
    data = json.loads(text)
    tables = {}
    for table in data["tables"]:
        document_type = table.get("documentType")
        tables[table["tableName"]] = TableDefinition(
            document_type=None if document_type in (None, {"type": "any"}) else document_type,
            indexes=[IndexDefinition(i["indexDescriptor"], i["fields"]) for i in table.get("indexes", [])],
            search_indexes=[
                SearchIndexDefinition(s["indexDescriptor"], s["searchField"], s.get("filterFields", []))
                for s in table.get("searchIndexes", [])
            ],
        )
    return SchemaDefinition(tables, data.get("schemaValidation", True))


class Database:
    """See docs/internals.md §2. Thread-safe; one writer at a time, readers on their own snapshots."""

    def __init__(self, file_path: str, clock, temp_dir: str | None = None):
        self.path = os.fspath(file_path)
        self.clock = clock or WallClock()
        self._temp_dir = temp_dir
        self._writer = store.connect(file_path, writer=True)
        # A private temporary database (--in-memory) dies with the process: no fsync needed.
        self._sync_mode = "OFF" if temp_dir else "FULL"
        self._writer.execute(f"PRAGMA synchronous={self._sync_mode}")
        self._writer.execute("PRAGMA temp_store=MEMORY")  # bulk loads stage index entries in a temp table
        self._writer.executescript(store.SCHEMA_SQL)
        store.migrate(self._writer)
        self._pool = store.ConnectionPool(file_path)
        self._commit_lock = threading.RLock()
        self._catalog_lock = threading.Lock()
        self._listeners: list[Callable[[Commit], None]] = []
        self._log: deque[Commit] = deque()
        self._log_floor_ts = 0
        self._closed = False
        self._bulk_active = False  # touched only by a bulk_insert helper thread
        # A temporary database is removed even when close() is never called (at exit or GC).
        self._cleanup = weakref.finalize(self, shutil.rmtree, temp_dir, True) if temp_dir else None
        self._load()

    @classmethod
    def open(cls, path: str | None = None, clock=None) -> "Database":
        """`path`: a data directory (the file is DIR/db.sqlite3), a file path, or None for a private
        temporary file deleted on close (--in-memory)."""
        if path is None:
            temp_dir = tempfile.mkdtemp(prefix="convex-console-")
            return cls(os.path.join(temp_dir, DB_FILE_NAME), clock, temp_dir)
        path = os.fspath(path)
        if os.path.isdir(path) or not os.path.splitext(path)[1]:
            os.makedirs(path, exist_ok=True)
            path = os.path.join(path, DB_FILE_NAME)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return cls(path, clock)

    def _load(self) -> None:
        conn = self._writer
        self.last_commit_ts = int(store.read_meta(conn, "last_commit_ts", "0"))
        self._last_creation_time = float(store.read_meta(conn, "last_creation_time", "0"))
        tables = store.load_catalog(conn)
        self._by_number = tables
        self._by_name = {t.name: t for t in tables.values()}
        numbers = list(tables)
        self._next_user_table = max([n for n in numbers if n >= store.FIRST_USER_TABLE], default=store.FIRST_USER_TABLE - 1) + 1
        self._next_system_table = max([n for n in numbers if n < store.FIRST_USER_TABLE], default=store.FIRST_SYSTEM_TABLE - 1) + 1
        row = conn.execute("SELECT COALESCE(MAX(index_id), 0) FROM indexes").fetchone()
        self._next_index_id = row[0] + 1
        # Document rowids are allocated here (bulk loads reserve blocks before they write).
        self._next_rowid = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM documents").fetchone()[0] + 1
        text = store.read_meta(conn, "schema_json")
        self._install_schema(schema_from_export(text) if text else None, text)

    def _install_schema(self, schema: SchemaDefinition | None, text: str | None) -> None:
        self._schema, self._schema_text = schema, text
        self._validators = {}
        self._search = {}
        if schema is None:
            return
        for name, definition in schema.tables.items():
            if schema.schema_validation:
                validator = _without_system_fields(definition.document_type)
                if validator is not None:
                    self._validators[name] = validator
            for search in definition.search_indexes:
                self._search[(name, search.name)] = search

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._commit_lock:
            self._pool.close()
            self._writer.close()
        if self._cleanup is not None:
            self._cleanup()

    # -- catalog -----------------------------------------------------------------------------

    def _table_by_name(self, name: Any) -> store.TableInfo | None:
        return self._by_name.get(name) if isinstance(name, str) else None

    def _table_by_number(self, number: int) -> store.TableInfo | None:
        return self._by_number.get(number)

    def _table_name_of(self, number: int) -> str | None:
        info = self._by_number.get(number)
        return info.name if info else None

    def _document_validator(self, table: str) -> dict | None:
        return self._validators.get(table)

    def _search_index(self, table: str, name: str) -> SearchIndexDefinition | None:
        return self._search.get((table, name))

    def _new_index(self, table_number: int, name: str, fields) -> store.IndexInfo:
        index = store.IndexInfo(self._next_index_id, table_number, name, tuple(fields))
        self._next_index_id += 1
        return index

    def _ensure_table(self, name: str) -> store.TableInfo:
        """The table named `name`; a new one is reserved in memory and persisted by its first commit."""
        with self._catalog_lock:
            info = self._by_name.get(name)
            if info is not None:
                return info
            if name.startswith("_"):
                number = self._next_system_table
                if number >= store.FIRST_USER_TABLE:
                    raise ConvexEngineError("Too many system tables")
                self._next_system_table += 1
            else:
                number = self._next_user_table
                self._next_user_table += 1
            info = store.TableInfo(number, name, persisted=False)
            for index_name in (store.BY_ID, store.BY_CREATION_TIME):
                info.indexes[index_name] = self._new_index(number, index_name, ())
            self._by_number[number] = info
            self._by_name[name] = info
            return info

    def _next_creation_time(self) -> float:
        with self._catalog_lock:
            now = self.clock.now_ms()
            value = now if now > self._last_creation_time else math.nextafter(self._last_creation_time, math.inf)
            self._last_creation_time = value
            return value

    def _next_ts(self) -> int:
        return max(self.clock.now_ns(), self.last_commit_ts + 1)

    def table_mapping(self) -> dict[int, str]:
        return {n: t.name for n, t in sorted(self._by_number.items()) if t.persisted}

    def table_names(self, include_system: bool = False) -> list[str]:
        return sorted(
            t.name for t in self._by_number.values() if t.persisted and (include_system or not t.is_system)
        )

    def schema_json(self) -> str | None:
        return self._schema_text

    def index_list(self, table: str) -> list[dict]:
        info = self._by_name.get(table)
        result = []
        if info is not None:
            for index in info.indexes.values():
                if index.name not in (store.BY_ID, store.BY_CREATION_TIME):
                    result.append(
                        {"name": index.name, "fields": list(index.fields), "staged": False, "backfill": {"state": "done"}}
                    )
        for (table_name, _), search in self._search.items():
            if table_name == table:
                result.append({
                    "name": search.name,
                    "fields": {"searchField": search.search_field, "filterFields": list(search.filter_fields)},
                    "staged": False,
                    "backfill": {"state": "done"},
                })
        return result

    # -- transactions ------------------------------------------------------------------------

    def begin(self, write: bool = False) -> Transaction:
        conn = self._pool.acquire()
        try:
            conn.execute("BEGIN")
            snapshot_ts = int(store.read_meta(conn, "last_commit_ts", "0"))  # first read fixes the snapshot
        except BaseException:
            self._pool.release(conn)
            raise
        return Transaction(self, conn, snapshot_ts, write)

    def read(self, fn: Callable[[Transaction], Any]) -> Any:
        tx = self.begin(False)
        try:
            return fn(tx)
        finally:
            tx.abort()

    def write(self, fn: Callable[[Transaction], Any]) -> tuple[Any, int]:
        """Run fn(tx) and commit; retried on conflict (the last attempts hold the commit lock)."""
        for attempt in range(MAX_WRITE_ATTEMPTS):
            pessimistic = attempt >= OPTIMISTIC_ATTEMPTS
            if pessimistic:
                self._commit_lock.acquire()
            try:
                tx = self.begin(True)
                try:
                    result = fn(tx)
                except BaseException:
                    tx.abort()
                    raise
                try:
                    return result, tx.commit()
                except ConflictError:
                    continue
            finally:
                if pessimistic:
                    self._commit_lock.release()
        raise ConvexEngineError(
            "Documents read from or written to this mutation changed while it was being run and on every "
            f"subsequent retry ({MAX_WRITE_ATTEMPTS} attempts)."
        )

    def _finish(self, tx: Transaction) -> None:
        if tx.finished:
            return
        tx.finished = True
        tx._streams.clear()
        self._pool.release(tx._conn)

    def add_commit_listener(self, callback: Callable[[Commit], None]) -> Callable[[], None]:
        """callback(Commit) runs after each commit, in commit order (under the commit lock: keep it short)."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def _check_conflicts(self, tx: Transaction) -> None:
        if tx.snapshot_ts < self._log_floor_ts:
            raise ConflictError("Transaction snapshot is older than the retained commit log; retry.")
        for commit in reversed(self._log):
            if commit.ts <= tx.snapshot_ts:
                break
            if tx.read_set.intersects(commit):
                tables = ", ".join(f"\"{t}\"" for t in sorted(commit.tables)) or "a table"
                raise ConflictError(
                    f"Documents read from or written to {tables} changed while this mutation was being run."
                )

    def _commit(self, tx: Transaction) -> int:
        if not tx.has_writes:
            self._finish(tx)
            return tx.snapshot_ts
        with self._commit_lock:
            try:
                self._check_conflicts(tx)
            finally:
                # The snapshot is no longer needed (the writer reads the stored versions itself).
                # Releasing it before COMMIT lets the WAL checkpoint that COMMIT runs complete, so
                # the WAL restarts instead of growing with every commit.
                self._finish(tx)
            writer = self._writer
            writer.execute("BEGIN IMMEDIATE")
            try:
                for number in tx._new_tables:
                    store.persist_table(writer, self._by_number[number])
                index_writes, tables, deltas = self._apply_writes(writer, tx)
                ts = self._finish_commit(writer, deltas)
                writer.execute("COMMIT")
            except BaseException:
                writer.execute("ROLLBACK")
                raise
            for number in tx._new_tables:
                self._by_number[number].persisted = True
            self._publish(Commit(ts, index_writes, tables))
            return ts

    def _apply_writes(self, writer, tx: Transaction) -> tuple[list[IndexWrite], set[str], dict[int, int]]:
        index_writes: list[IndexWrite] = []
        tables: set[str] = set()
        deltas: dict[int, int] = {}
        for doc_id, (number, doc) in tx._writes.items():
            info = self._by_number[number]
            id_key = keys.id_key(doc_id)
            if doc_id in tx._inserted:
                row = None  # a fresh random id: no stored version to look up
            else:
                row = writer.execute(
                    "SELECT rowid, json FROM documents WHERE table_number=? AND id_key=?", (number, id_key)
                ).fetchone()
            old = decode_document(row[1]) if row else None
            if old is None and doc is None:
                continue
            tables.add(info.name)
            changes = []
            staged = tx._doc_keys.get(doc_id, ()) if doc is not None else ()
            staged_keys = dict(staged)  # computed by _stage (an index added since then is keyed here)
            for index in info.indexes.values():
                old_key = index.key(old) if old is not None else None
                new_key = None if doc is None else (staged_keys.get(index.index_id) or index.key(doc))
                index_writes.append(IndexWrite(index.index_id, old_key, new_key))
                if not index.is_by_id and old_key != new_key:
                    changes.append((index.index_id, old_key, new_key))
            for index_id, old_key, _ in changes:
                if old_key is not None:
                    writer.execute("DELETE FROM index_entries WHERE index_id=? AND key=?", (index_id, old_key))
            if doc is None:
                writer.execute("DELETE FROM documents WHERE rowid=?", (row[0],))
                deltas[number] = deltas.get(number, 0) - 1
                continue
            text, size = store.encode_document(doc), store.document_size(doc)
            if row is not None:
                rowid = row[0]
                writer.execute("UPDATE documents SET json=?, size=? WHERE rowid=?", (text, size, rowid))
            else:
                rowid = self._reserve_rowids(1)
                writer.execute(
                    "INSERT INTO documents(rowid, table_number, id_key, json, size) VALUES(?, ?, ?, ?, ?)",
                    (rowid, number, id_key, text, size),
                )
                deltas[number] = deltas.get(number, 0) + 1
            for index_id, _, new_key in changes:
                if new_key is not None:
                    writer.execute(
                        "INSERT INTO index_entries(index_id, key, doc) VALUES(?, ?, ?)", (index_id, new_key, rowid)
                    )
        return index_writes, tables, deltas

    def _finish_commit(self, writer, deltas: dict[int, int]) -> int:
        for number, delta in deltas.items():
            writer.execute(
                "INSERT INTO table_counts(table_number, n) VALUES(?, ?) "
                "ON CONFLICT(table_number) DO UPDATE SET n = n + excluded.n",
                (number, delta),
            )
        ts = self._next_ts()
        writer.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES('last_commit_ts', ?), ('last_creation_time', ?)",
            (str(ts), repr(self._last_creation_time)),
        )
        return ts

    def _publish(self, commit: Commit) -> None:
        """Record a commit that is durable in SQLite; call with the commit lock held."""
        self.last_commit_ts = commit.ts
        self._log.append(commit)
        while len(self._log) > COMMIT_LOG_SIZE:
            self._log_floor_ts = self._log.popleft().ts
        for listener in list(self._listeners):
            try:
                listener(commit)
            except Exception:  # the commit is durable: a failing listener must not undo or fail it
                log.exception("commit listener %r failed", listener)

    # -- schema ------------------------------------------------------------------------------

    def set_schema(self, schema: SchemaDefinition | None) -> int:
        """Create/backfill/drop indexes, validate existing documents, keep the schema JSON."""
        if schema is not None:
            schema.check()
        with self._commit_lock:
            if (schema.export_json() if schema is not None else None) == self._schema_text:
                return self.last_commit_ts  # unchanged (e.g. a restart): nothing to backfill or check
            writer = self._writer
            writer.execute("BEGIN IMMEDIATE")
            try:
                plan = self._plan_indexes(writer, schema)
                if schema is not None and schema.schema_validation:
                    self._validate_existing(writer, schema)
                text = schema.export_json() if schema is not None else None
                if text is None:
                    writer.execute("DELETE FROM meta WHERE key='schema_json'")
                else:
                    store.write_meta(writer, "schema_json", text)
                ts = self._finish_commit(writer, {})
                writer.execute("COMMIT")
            except BaseException:
                # Tables reserved here stay reserved (invisible until a commit persists them):
                # a concurrent transaction may already be inserting into one.
                writer.execute("ROLLBACK")
                raise
            for info, indexes in plan.values():
                info.indexes = indexes
                info.persisted = True
            self._install_schema(schema, text)
            self._publish(Commit(ts, [], set(schema.tables) if schema else set(), schema_changed=True))
            return ts

    def _plan_indexes(self, writer, schema) -> dict:
        """Apply index changes in SQLite; returns {TableInfo: new indexes dict} to install on success."""
        plan = {}
        desired_by_table = {name: d.indexes for name, d in (schema.tables.items() if schema else [])}
        for name in desired_by_table:
            self._ensure_table(name)
        for info in list(self._by_number.values()):
            desired = {i.name: i.fields for i in desired_by_table.get(info.name, [])}
            if info.is_system and info.name not in desired_by_table:
                continue
            if not info.persisted and info.name not in desired_by_table:
                continue
            indexes = {n: i for n, i in info.indexes.items() if n in (store.BY_ID, store.BY_CREATION_TIME)}
            for name, index in info.indexes.items():
                if name in indexes:
                    continue
                if desired.get(name) == index.fields:
                    indexes[name] = index
                else:
                    writer.execute("DELETE FROM index_entries WHERE index_id=?", (index.index_id,))
                    writer.execute("DELETE FROM indexes WHERE index_id=?", (index.index_id,))
            for name, fields in desired.items():
                if name not in indexes:
                    indexes[name] = self._new_index(info.number, name, fields)
                    self._backfill(writer, indexes[name])
            store.persist_table(writer, store.TableInfo(info.number, info.name, indexes))
            plan[info.number] = (info, indexes)
        return plan

    def _backfill(self, writer, index: store.IndexInfo) -> None:
        rows = writer.execute("SELECT rowid, json FROM documents WHERE table_number=?", (index.table_number,))
        while batch := rows.fetchmany(5000):
            writer.executemany(
                "INSERT INTO index_entries(index_id, key, doc) VALUES(?, ?, ?)",
                [(index.index_id, index.key(decode_document(text)), rowid) for rowid, text in batch],
            )

    def _validate_existing(self, writer, schema: SchemaDefinition) -> None:
        """Check stored documents against every documentType that is new or changed."""
        for name, definition in schema.tables.items():
            validator = _without_system_fields(definition.document_type)
            info = self._by_name.get(name)
            if validator is None or info is None or self._validators.get(name) == validator:
                continue
            for (text,) in writer.execute("SELECT json FROM documents WHERE table_number=?", (info.number,)):
                doc = decode_document(text)
                try:
                    validate_value(validator, strip_system_fields(doc), table_name_of=self._table_name_of)
                except ValidationError as error:
                    raise ValidationError(
                        f"Schema validation failed.\nDocument with ID \"{doc['_id']}\" in table \"{name}\" does not "
                        f"match the schema: {error}"
                    ) from None

    def define_system_table(self, name: str, indexes: Iterable[IndexDefinition] = ()) -> None:
        """Create a system table (`_...`) with its own indexes (not part of the user schema)."""
        if not name.startswith("_"):
            raise ConvexEngineError(f"System table names start with '_': {name}")
        with self._commit_lock:
            info = self._ensure_table(name)
            wanted = {i.name: tuple(i.fields) for i in indexes}
            if info.persisted and all(
                n in info.indexes and info.indexes[n].fields == f for n, f in wanted.items()
            ):
                return
            writer = self._writer
            writer.execute("BEGIN IMMEDIATE")
            try:
                new_indexes = dict(info.indexes)
                for index_name, fields in wanted.items():
                    old = new_indexes.get(index_name)
                    if old is not None and old.fields == fields:
                        continue
                    if old is not None:
                        writer.execute("DELETE FROM index_entries WHERE index_id=?", (old.index_id,))
                    new_indexes[index_name] = self._new_index(info.number, index_name, fields)
                    self._backfill(writer, new_indexes[index_name])
                store.persist_table(writer, store.TableInfo(info.number, name, new_indexes))
                ts = self._finish_commit(writer, {})
                writer.execute("COMMIT")
            except BaseException:
                writer.execute("ROLLBACK")
                raise
            info.indexes, info.persisted = new_indexes, True
            self._publish(Commit(ts, [], {name}, schema_changed=True))

    # -- bulk load ---------------------------------------------------------------------------

    def bulk_insert(self, table: str, documents: Iterable[dict], *, batch: int = 50_000, system: bool = False,
                    validate: bool = True, return_ids: bool = True) -> list[str] | int:
        """Insert many documents fast, in one transaction (other commits wait for it).

        Documents are appended batch by batch; their index entries are staged in a temporary
        table and merged into the indexes in key order at the end (random inserts into big
        B-trees, batch after batch, would rewrite most index pages every time). A helper
        thread does the SQLite work while this thread prepares the next batch.
        Returns the new ids in order (or their count).
        """
        if table.startswith("_") != system:
            raise ConvexEngineError("System tables (prefixed with `_`) are read-only." if not system
                                    else "User tables cannot be accessed with db.system.")
        info = self._ensure_table(table)
        validator = self._validators.get(table) if validate else None
        all_ids: list[str] = []
        total = 0
        iterator = iter(documents)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-insert") as pool:
            pool.submit(self._bulk_begin, info).result()
            pending = None
            try:
                while chunk := list(itertools.islice(iterator, batch)):
                    specs = [(i.index_id, i.fields) for i in info.indexes.values() if not i.is_by_id]
                    times = self._creation_times(len(chunk))
                    prepared = [
                        self._prepare_bulk(info, value, validate, validator, specs, creation_time)
                        for value, creation_time in zip(chunk, times)
                    ]
                    statements = self._bulk_statements(info, prepared)
                    if pending is not None:
                        pending.result()
                    pending = pool.submit(self._bulk_write, statements)
                    total += len(prepared)
                    if return_ids:
                        all_ids.extend(p[0] for p in prepared)
                if pending is not None:
                    pending.result()
                pending = None
                pool.submit(self._bulk_commit, info, total).result()
            except BaseException:
                if pending is not None:
                    try:
                        pending.result()
                    except BaseException:
                        pass
                pool.submit(self._bulk_rollback).result()
                raise
        if total and self._sync_mode != "OFF":
            self._sync_files()
        return all_ids if return_ids else total

    # The _bulk_* steps run on the bulk helper thread, which holds the commit lock from
    # _bulk_begin to _bulk_commit/_bulk_rollback.

    def _bulk_begin(self, info: store.TableInfo) -> None:
        self._commit_lock.acquire()
        self._bulk_active = True
        try:
            writer = self._writer
            # No fsync per batch or per checkpoint: bulk_insert syncs the files once at the end.
            writer.execute("PRAGMA synchronous=OFF")
            writer.execute("BEGIN IMMEDIATE")
            writer.execute(
                "CREATE TEMP TABLE IF NOT EXISTS bulk_entries(index_id INTEGER, key BLOB, doc INTEGER)"
            )
            if not info.persisted:
                store.persist_table(writer, info)
        except BaseException:
            self._bulk_rollback()
            raise

    def _bulk_write(self, statements: list[tuple[str, list]]) -> None:
        for sql, params in statements:
            self._writer.execute(sql, params)

    def _bulk_commit(self, info: store.TableInfo, count: int) -> None:
        writer = self._writer
        try:
            if count == 0:
                self._bulk_rollback()
                return
            writer.execute(
                "INSERT INTO index_entries(index_id, key, doc) "
                "SELECT index_id, key, doc FROM temp.bulk_entries ORDER BY index_id, key"
            )
            writer.execute("DELETE FROM temp.bulk_entries")
            ts = self._finish_commit(writer, {info.number: count})
            writer.execute("COMMIT")
        except BaseException:
            self._bulk_rollback()
            raise
        try:
            writer.execute(f"PRAGMA synchronous={self._sync_mode}")
            info.persisted = True
            whole = {i.index_id for i in info.indexes.values()}
            self._publish(Commit(ts, [], {info.name}, whole_indexes=whole))
        finally:
            self._bulk_active = False
            self._commit_lock.release()

    def _bulk_rollback(self) -> None:
        if not self._bulk_active:
            return
        writer = self._writer
        try:
            if writer.in_transaction:
                writer.execute("ROLLBACK")
            writer.execute(f"PRAGMA synchronous={self._sync_mode}")
        finally:
            self._bulk_active = False
            self._commit_lock.release()

    def _sync_files(self) -> None:
        """The bulk batches were written without fsync: checkpoint what readers allow, then fsync
        the database file and its WAL once, so everything loaded survives an OS crash too."""
        with self._commit_lock:
            self._writer.execute("PRAGMA wal_checkpoint(PASSIVE)")
            for suffix in ("", "-wal"):
                try:
                    fd = os.open(self.path + suffix, os.O_RDONLY)
                except FileNotFoundError:
                    continue
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

    def _creation_times(self, count: int) -> list[float]:
        """`count` unique increasing creation times (as _next_creation_time, under one lock)."""
        with self._catalog_lock:
            last = max(self._last_creation_time, math.nextafter(self.clock.now_ms(), -math.inf))
            result = []
            for _ in range(count):
                last = math.nextafter(last, math.inf)
                result.append(last)
            self._last_creation_time = last
            return result

    def _prepare_bulk(self, info: store.TableInfo, value: dict, validate: bool, validator, specs,
                      creation_time: float) -> tuple:
        if validate:
            if not isinstance(value, dict):
                raise ConvexEngineError("Value must be an Object")
            if "_id" in value or "_creationTime" in value:
                raise ConvexEngineError("System fields are assigned by Convex; they cannot be set on insert.")
        doc_id = ids.encode_id(info.number, ids.new_internal_id(creation_time))
        doc = {"_id": doc_id, "_creationTime": creation_time, **value}
        if validate:
            try:
                size = store.check_document(doc)
                if validator is not None:
                    validate_value(validator, value, table_name_of=self._table_name_of)
            except (ValueError, ValidationError) as error:
                raise ConvexEngineError(str(error)) from None
        else:
            size = store.document_size(doc)
        return doc_id, keys.id_key(doc_id), creation_time, store.encode_document(doc), keys.index_keys(doc, specs), size

    def _reserve_rowids(self, count: int) -> int:
        with self._catalog_lock:
            base = self._next_rowid
            self._next_rowid += count
            return base

    def _bulk_statements(self, info: store.TableInfo, prepared: list[tuple]) -> list[tuple[str, list]]:
        base = self._reserve_rowids(len(prepared))
        number = info.number
        doc_params = [x for i, p in enumerate(prepared) for x in (base + i, number, p[1], p[3], p[5])]
        entry_params = [x for i, p in enumerate(prepared) for index_id, key in p[4] for x in (index_id, key, base + i)]
        return [
            *_multi_row_inserts("documents(rowid, table_number, id_key, json, size)", 5, doc_params),
            *_multi_row_inserts("temp.bulk_entries(index_id, key, doc)", 3, entry_params),
        ]

