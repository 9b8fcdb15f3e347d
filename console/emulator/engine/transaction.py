"""Transactions shaped after the syscalls (QUERIES §1.2-1.3), read sets and commits.

A transaction reads one SQLite snapshot (its own connection inside BEGIN) and buffers its writes
in memory; reads see the buffered writes through a per-index overlay merged into every scan.
`Database.commit` validates the read set against later commits (OCC) and applies the writes.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from console import ids, values
from console.emulator.errors import ConvexEngineError
from console.values import UNDEFINED

from . import keys, query, store
from .validate import ValidationError, strip_system_fields, validate_value

if TYPE_CHECKING:  # pragma: no cover
    from .database import Database

_PAST_ALL_KEYS = b"\xff" * 64
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _kind(value: Any) -> str:
    try:
        return values.type_name(value)
    except ValueError:
        return type(value).__name__


def _drop_undefined(value: Any) -> Any:
    """Object fields set to undefined are omitted, as convexToJson does."""
    if isinstance(value, dict):
        return {k: _drop_undefined(v) for k, v in value.items() if v is not UNDEFINED}
    if isinstance(value, list):
        return [_drop_undefined(v) for v in value]
    return value


class ConflictError(ConvexEngineError):
    """The transaction's reads were overwritten by a commit after its snapshot."""


class IndexWrite(NamedTuple):
    index_id: int
    old_key: bytes | None
    new_key: bytes | None


@dataclass
class Commit:
    ts: int
    writes: list[IndexWrite]
    tables: set[str]
    whole_indexes: set[int] = field(default_factory=set)  # bulk loads: every key may have changed
    schema_changed: bool = False


@dataclass(slots=True)
class ReadInterval:
    """Keys [start, end) of one index (end None = unbounded); a scan widens it as it proceeds."""

    index_id: int
    start: bytes
    end: bytes | None
    floor: bytes = b""
    ceiling: bytes | None = None

    def contains(self, key: bytes | None) -> bool:
        return key is not None and key >= self.start and (self.end is None or key < self.end)


class ReadSet:
    def __init__(self):
        self.intervals: list[ReadInterval] = []
        self.missing_tables: set[str] = set()  # read while they did not exist: their creation invalidates

    def add(self, interval: ReadInterval) -> ReadInterval:
        self.intervals.append(interval)
        return interval

    def by_index(self) -> dict[int, list[ReadInterval]]:
        grouped: dict[int, list[ReadInterval]] = {}
        for interval in self.intervals:
            if interval.end is None or interval.start < interval.end:
                grouped.setdefault(interval.index_id, []).append(interval)
        return grouped

    def intersects(self, commit: Commit) -> bool:
        """True when a write of `commit` (old or new key) falls inside an interval read."""
        if self.missing_tables and not self.missing_tables.isdisjoint(commit.tables):
            return True
        grouped = self.by_index()
        if not grouped:
            return False
        if commit.schema_changed or commit.whole_indexes.intersection(grouped):
            return True
        for write in commit.writes:
            for interval in grouped.get(write.index_id, ()):
                if interval.contains(write.old_key) or interval.contains(write.new_key):
                    return True
        return False

    def __len__(self) -> int:
        return len(self.intervals) + len(self.missing_tables)


class _Overlay:
    """Pending index entries of one index: sorted keys -> document."""

    __slots__ = ("keys", "docs")

    def __init__(self):
        self.keys: list[bytes] = []
        self.docs: dict[bytes, dict] = {}

    def add(self, key: bytes, doc: dict) -> None:
        bisect.insort(self.keys, key)
        self.docs[key] = doc

    def remove(self, key: bytes) -> None:
        i = bisect.bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            del self.keys[i]
        self.docs.pop(key, None)


_ABSENT = object()  # undo-log marker: the entry did not exist before


class Savepoint:
    """An opaque mark of a transaction's staged writes (`tx.savepoint()`), for `tx.rollback_to`."""

    __slots__ = ("_tx", "_position", "_valid")

    def __init__(self, tx: "Transaction", position: int):
        self._tx = tx
        self._position = position  # length of the transaction's undo log when taken
        self._valid = True

    def __repr__(self) -> str:
        return f"<Savepoint at write {self._position}{'' if self._valid else ' (invalid)'}>"


class Transaction:
    def __init__(self, db: "Database", conn, snapshot_ts: int, write: bool, locked: bool = False):
        self.db = db
        self._conn = conn
        self.snapshot_ts = snapshot_ts
        self.write = write
        self.locked = locked
        self.read_set = ReadSet()
        self._writes: dict[str, tuple[int, dict | None]] = {}  # id -> (table number, new doc | None)
        self._overlays: dict[int, _Overlay] = {}
        self._doc_keys: dict[str, list[tuple[int, bytes]]] = {}
        self._inserted: set[str] = set()  # ids created by this transaction
        self._count_delta: dict[int, int] = {}
        self._new_tables: set[int] = set()
        self._savepoints: list[Savepoint] = []  # open marks, oldest first
        self._undo: list[tuple] = []  # how to undo each write state change, kept while a mark is open
        self._streams: dict[int, query.QueryStream] = {}
        self._next_query_id = 0
        self.finished = False

    # -- internals used by scans -------------------------------------------------------------

    def _scan(self, index: store.IndexInfo, lo: bytes, hi: bytes | None, desc: bool,
              batch: int = query.FIRST_BATCH) -> query.IndexScan:
        # Nothing read yet: an empty interval that the scan widens (desc: down from hi, asc: up from lo).
        if desc:
            start = hi if hi is not None else _PAST_ALL_KEYS
            interval = ReadInterval(index.index_id, start, hi, lo, hi)
        else:
            interval = ReadInterval(index.index_id, lo, lo, lo, hi)
        self.read_set.add(interval)
        return query.IndexScan(self, index, lo, hi, desc, interval, batch)

    def _overlay_next(self, index_id: int, lo: bytes, hi: bytes | None, desc: bool):
        overlay = self._overlays.get(index_id)
        if not overlay or not overlay.keys:
            return None
        if desc:
            i = len(overlay.keys) if hi is None else bisect.bisect_left(overlay.keys, hi)
            if i == 0 or overlay.keys[i - 1] < lo:
                return None
            key = overlay.keys[i - 1]
        else:
            i = bisect.bisect_left(overlay.keys, lo)
            if i == len(overlay.keys) or (hi is not None and overlay.keys[i] >= hi):
                return None
            key = overlay.keys[i]
        return key, overlay.docs[key]

    def _read_whole_table(self, table: store.TableInfo | None, name: str | None = None) -> None:
        if table is not None:
            self.read_set.add(ReadInterval(table.by_creation_time.index_id, b"", None))
        elif isinstance(name, str):
            self.read_set.missing_tables.add(name)

    def _check_open(self, writing: bool = False) -> None:
        if self.finished:
            raise ConvexEngineError("Transaction already finished")
        if writing and not self.write:
            raise ConvexEngineError("Cannot write in a read-only transaction (queries are read-only).")

    # -- id resolution -----------------------------------------------------------------------

    def _resolve(self, doc_id: Any, op: str, table: str | None, is_system: bool | None):
        """(TableInfo | None, id) for an id argument, applying the backend's checks."""
        if not isinstance(doc_id, str):
            raise ConvexEngineError(f"Invalid argument `id` for `{op}`: expected a string, got {_kind(doc_id)}")
        try:
            number, _ = ids.decode_id(doc_id)
        except ids.InvalidId:
            raise ConvexEngineError(f"Invalid argument `id` for `{op}`: Unable to decode ID: Invalid ID") from None
        info = self.db._table_by_number(number)
        if info is None:
            return None, doc_id
        if table is not None and info.name != table:
            raise ConvexEngineError(
                f"Invalid argument `id` for `{op}`: expected to be an Id<\"{table}\">, got Id<\"{info.name}\"> instead."
            )
        if is_system is not None:
            if info.is_system and not is_system:
                raise ConvexEngineError("System tables can only be accessed with db.system.")
            if not info.is_system and is_system:
                raise ConvexEngineError("User tables cannot be accessed with db.system.")
        return info, doc_id

    def _current(self, info: store.TableInfo, doc_id: str) -> dict | None:
        """The document as this transaction sees it; records a point read."""
        id_key = keys.id_key(doc_id)
        self.read_set.add(ReadInterval(info.by_id.index_id, id_key, keys.successor(id_key)))
        if doc_id in self._writes:
            return self._writes[doc_id][1]
        text = store.fetch_document(self._conn, info.number, id_key)
        return None if text is None else query.decode_document(text)

    # -- reads -------------------------------------------------------------------------------

    def get(self, doc_id: Any, *, table: str | None = None, is_system: bool = False) -> dict | None:
        self._check_open()
        info, doc_id = self._resolve(doc_id, "db.get", table, is_system)
        if info is None:
            return None
        doc = self._current(info, doc_id)
        if doc is None or doc_id not in self._writes:
            return doc  # decoded for this call: the caller's own copy
        return dict(doc)

    def count(self, table: str) -> int:
        self._check_open()
        info = self.db._table_by_name(table)
        self._read_whole_table(info, table)
        if info is None:
            return 0
        return store.fetch_count(self._conn, info.number) + self._count_delta.get(info.number, 0)

    def normalize_id(self, table: str, id_string: Any) -> str | None:
        self._check_open()
        if not isinstance(id_string, str):
            return None
        info = self.db._table_by_name(table)
        if info is None:
            return None
        try:
            number, _ = ids.decode_id(id_string)
        except ids.InvalidId:
            return None
        return id_string if number == info.number else None

    def query_stream(self, query_json: dict) -> int:
        self._check_open()
        compiled = query.compile_query(self, query_json)
        if compiled.search is not None:
            scan = query.ListScan(query.run_search(self, compiled))
        elif compiled.table is None:
            self._read_whole_table(None, compiled.table_name)
            scan = query.ListScan([])
        else:
            scan = self._scan(compiled.index, compiled.start, compiled.end, compiled.desc)
        self._next_query_id += 1
        self._streams[self._next_query_id] = query.QueryStream(scan, compiled.operators)
        return self._next_query_id

    def query_stream_next(self, query_id: int) -> tuple[dict | None, bool]:
        self._check_open()
        stream = self._streams.get(query_id)
        if stream is None:
            raise ConvexEngineError("in-progress query not found")
        item = stream.next()
        if item is None:
            del self._streams[query_id]
            return None, True
        # Pending documents are shared with the overlay; without writes each row was decoded for this call.
        return (dict(item[1]) if self._writes else item[1]), False

    def query_cleanup(self, query_id: int) -> bool:
        return self._streams.pop(query_id, None) is not None

    def query_page(self, query_json: dict, *, cursor: str | None, end_cursor: str | None = None, page_size,
                   maximum_rows_read=None, maximum_bytes_read=None) -> dict:
        self._check_open()
        return query.run_page(
            self, query_json, cursor=cursor, end_cursor=end_cursor, page_size=page_size,
            maximum_rows_read=maximum_rows_read, maximum_bytes_read=maximum_bytes_read,
        )

    def collect(self, query_json: dict) -> list[dict]:
        """Convenience: every document of a query."""
        query_id = self.query_stream(query_json)
        result = []
        while True:
            doc, done = self.query_stream_next(query_id)
            if done:
                return result
            result.append(doc)

    # -- writes ------------------------------------------------------------------------------

    def insert(self, table: str, value: Any, *, system: bool = False) -> str:
        self._check_open(writing=True)
        if not isinstance(table, str) or not _TABLE_NAME.match(table) or set(table) == {"_"}:
            raise ConvexEngineError(f"Invalid table name: \"{table}\"")
        if table.startswith("_") and not system:
            raise ConvexEngineError("System tables (prefixed with `_`) are read-only.")
        if not table.startswith("_") and system:
            raise ConvexEngineError("User tables cannot be accessed with db.system.")
        if not isinstance(value, dict):
            raise ConvexEngineError("Value must be an Object")
        for name in ("_id", "_creationTime"):
            if name in value:
                raise ConvexEngineError(
                    f"Field '{name}' is a system field assigned by Convex; it cannot be set on insert."
                )
        value = _drop_undefined(value)
        info = self.db._ensure_table(table)
        if not info.persisted and info.number not in self._new_tables:
            self._log("new_table", info.number)
            self._new_tables.add(info.number)
        creation_time = self.db._next_creation_time()
        doc_id = ids.encode_id(info.number, ids.new_internal_id(creation_time))
        doc = {"_id": doc_id, "_creationTime": creation_time, **value}
        self._check_document(info, doc)
        self._stage(info, doc_id, doc)
        self._log("inserted", doc_id)
        self._inserted.add(doc_id)
        self._add_count(info.number, 1)
        return doc_id

    def shallow_merge(self, doc_id: Any, patch: Any, *, table: str | None = None, is_system: bool | None = None) -> dict:
        self._check_open(writing=True)
        info, doc_id, current = self._existing(doc_id, "db.patch", table, is_system, "Update")
        if not isinstance(patch, dict):
            raise ConvexEngineError("Value must be an Object")
        doc = dict(current)
        for name, value in patch.items():
            if name in ("_id", "_creationTime"):
                self._check_system_field(current, name, value)
                continue
            if value is UNDEFINED:
                doc.pop(name, None)
            else:
                doc[name] = _drop_undefined(value)
        self._check_document(info, doc)
        self._stage(info, doc_id, doc)
        return dict(doc)

    def replace(self, doc_id: Any, value: Any, *, table: str | None = None, is_system: bool | None = None) -> dict:
        self._check_open(writing=True)
        info, doc_id, current = self._existing(doc_id, "db.replace", table, is_system, "Replace")
        if not isinstance(value, dict):
            raise ConvexEngineError("Value must be an Object")
        for name in ("_id", "_creationTime"):
            if name in value:
                self._check_system_field(current, name, value[name])
        doc = {k: v for k, v in _drop_undefined(value).items() if k not in ("_id", "_creationTime")}
        doc = {"_id": current["_id"], "_creationTime": current["_creationTime"], **doc}
        self._check_document(info, doc)
        self._stage(info, doc_id, doc)
        return dict(doc)

    def remove(self, doc_id: Any, *, table: str | None = None, is_system: bool | None = None) -> dict:
        self._check_open(writing=True)
        info, doc_id, current = self._existing(doc_id, "db.delete", table, is_system, "Delete")
        self._stage(info, doc_id, None)
        self._add_count(info.number, -1)
        return dict(current)

    def _existing(self, doc_id, op, table, is_system, verb):
        info, doc_id = self._resolve(doc_id, op, table, is_system)
        current = self._current(info, doc_id) if info is not None else None
        if current is None:
            raise ConvexEngineError(f"{verb} on nonexistent document ID {doc_id}")
        return info, doc_id, current

    @staticmethod
    def _check_system_field(current: dict, name: str, value: Any) -> None:
        if values.compare(value, current[name]) != 0:
            raise ConvexEngineError(
                f"Provided `{name}` ({value!r}) does not match the document's `{name}` ({current[name]!r}); "
                "system fields cannot be modified."
            )

    def _check_document(self, info: store.TableInfo, doc: dict) -> None:
        try:
            store.check_document(doc)
        except ValueError as error:
            raise ConvexEngineError(str(error)) from None
        validator = self.db._document_validator(info.name)
        if validator is not None:
            try:
                validate_value(validator, strip_system_fields(doc), table_name_of=self.db._table_name_of)
            except ValidationError as error:
                raise ValidationError(
                    f"Failed to insert or update a document in table \"{info.name}\" because it does not match "
                    f"the schema: {error}"
                ) from None

    def _add_count(self, number: int, delta: int) -> None:
        previous = self._count_delta.get(number, _ABSENT)
        self._log("count", number, previous)
        self._count_delta[number] = delta if previous is _ABSENT else previous + delta

    def _stage(self, info: store.TableInfo, doc_id: str, doc: dict | None) -> None:
        if self._savepoints:
            self._undo.append(("stage", doc_id, self._writes.get(doc_id, _ABSENT), self._doc_keys.get(doc_id)))
        for index_id, key in self._doc_keys.pop(doc_id, ()):
            self._overlays[index_id].remove(key)
        if doc is not None:
            entries = []
            for index in info.indexes.values():
                key = index.key(doc)
                self._overlays.setdefault(index.index_id, _Overlay()).add(key, doc)
                entries.append((index.index_id, key))
            self._doc_keys[doc_id] = entries
        self._writes[doc_id] = (info.number, doc)

    # -- savepoints --------------------------------------------------------------------------

    def _log(self, *entry) -> None:
        if self._savepoints:
            self._undo.append(entry)

    def savepoint(self) -> Savepoint:
        """A mark of the writes staged so far; `rollback_to(mark)` undoes every write after it."""
        self._check_open(writing=True)
        mark = Savepoint(self, len(self._undo))
        self._savepoints.append(mark)
        return mark

    def _open_position(self, mark: Any, op: str) -> int:
        """The index of `mark` among the open marks; a clear error for a stale or foreign mark."""
        self._check_open(writing=True)
        if not isinstance(mark, Savepoint) or mark._tx is not self:
            raise ConvexEngineError(f"{op}: not a savepoint of this transaction")
        if not mark._valid:
            raise ConvexEngineError(f"{op}: savepoint is no longer valid (rolled back past or released)")
        return self._savepoints.index(mark)

    def _drop_marks_after(self, position: int) -> None:
        for later in self._savepoints[position + 1:]:
            later._valid = False
        del self._savepoints[position + 1:]

    def rollback_to(self, mark: Savepoint) -> None:
        """Undo every write staged since `mark` (reads stay in the read set); later marks become invalid.

        `mark` itself stays open: rolling back to it again undoes the writes made since."""
        position = self._open_position(mark, "rollback_to")
        self._drop_marks_after(position)
        undo = self._undo
        while len(undo) > mark._position:
            self._undo_one(undo.pop())

    def release(self, mark: Savepoint) -> None:
        """Keep the writes made since `mark` and close it (with the marks taken after it)."""
        position = self._open_position(mark, "release")
        self._drop_marks_after(position - 1)
        mark._valid = False
        if not self._savepoints:
            self._undo.clear()

    def _undo_one(self, entry: tuple) -> None:
        kind = entry[0]
        if kind == "stage":
            self._unstage(*entry[1:])
        elif kind == "count":
            _, number, previous = entry
            if previous is _ABSENT:
                del self._count_delta[number]
            else:
                self._count_delta[number] = previous
        elif kind == "inserted":
            self._inserted.discard(entry[1])
        elif kind == "new_table":
            self._new_tables.discard(entry[1])

    def _unstage(self, doc_id: str, previous: Any, previous_keys: list | None) -> None:
        for index_id, key in self._doc_keys.pop(doc_id, ()):
            overlay = self._overlays[index_id]
            overlay.remove(key)
            if not overlay.keys:
                del self._overlays[index_id]
        if previous is _ABSENT:
            del self._writes[doc_id]
            return
        self._writes[doc_id] = previous
        if previous_keys is not None:
            for index_id, key in previous_keys:
                self._overlays.setdefault(index_id, _Overlay()).add(key, previous[1])
            self._doc_keys[doc_id] = previous_keys

    # -- end ---------------------------------------------------------------------------------

    @property
    def has_writes(self) -> bool:
        return bool(self._writes)

    def commit(self) -> int:
        self._check_open()
        return self.db._commit(self)

    def abort(self) -> None:
        self.db._finish(self)
