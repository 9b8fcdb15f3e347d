"""SQLite layout, connections and the in-memory catalog of tables and indexes.

Tables:
- `documents(rowid, table_number, id_key, json, size)`: one row per document; `id_key` is
  the `by_id` index key (keys.id_key), so `by_id` ranges read this table's unique index.
  `json` holds the document as a marshal BLOB (format 2: fields sorted, decodes ~8x faster than
  JSON) or, in rows written by format 1, as convex_encoded_json TEXT; both are read. `size` is
  values.value_size of the document (NULL in format-1 rows: computed when read).
- `index_entries(index_id, key, doc)` WITHOUT ROWID, PRIMARY KEY(index_id, key): every other index
  (`by_creation_time` and user indexes); `doc` is the documents rowid.
- `tables`, `indexes`, `table_counts`, `meta` (last_commit_ts, last_creation_time, schema_json).
"""

from __future__ import annotations

import json
import marshal
import sqlite3
import threading
from dataclasses import dataclass, field

from console import values

from . import keys

FIRST_USER_TABLE = 10001
FIRST_SYSTEM_TABLE = 1001
FORMAT_VERSION = "2"
MARSHAL_VERSION = 2  # no back-references: loads ~25% faster than version 4, rows ~20% larger

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tables(number INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS indexes(
    index_id INTEGER PRIMARY KEY, table_number INTEGER NOT NULL, name TEXT NOT NULL,
    fields TEXT NOT NULL, UNIQUE(table_number, name));
CREATE TABLE IF NOT EXISTS documents(
    rowid INTEGER PRIMARY KEY, table_number INTEGER NOT NULL, id_key BLOB NOT NULL,
    json TEXT NOT NULL, size INTEGER, UNIQUE(table_number, id_key));
CREATE TABLE IF NOT EXISTS index_entries(
    index_id INTEGER NOT NULL, key BLOB NOT NULL, doc INTEGER NOT NULL,
    PRIMARY KEY(index_id, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS table_counts(table_number INTEGER PRIMARY KEY, n INTEGER NOT NULL);
"""

BY_ID = "by_id"
BY_CREATION_TIME = "by_creation_time"


@dataclass
class IndexInfo:
    index_id: int
    table_number: int
    name: str
    fields: tuple[str, ...]  # user fields only; by_id / by_creation_time have ()

    @property
    def is_by_id(self) -> bool:
        return self.name == BY_ID

    @property
    def key_fields(self) -> tuple[str, ...]:
        """The key columns, as range expressions name them."""
        if self.is_by_id:
            return ("_id",)
        return (*self.fields, "_creationTime", "_id")

    def key(self, doc: dict) -> bytes:
        if self.is_by_id:
            return keys.id_key(doc["_id"])
        return keys.index_key(doc, self.fields)


@dataclass
class TableInfo:
    number: int
    name: str
    indexes: dict[str, IndexInfo] = field(default_factory=dict)
    persisted: bool = True

    @property
    def is_system(self) -> bool:
        return self.name.startswith("_")

    @property
    def by_id(self) -> IndexInfo:
        return self.indexes[BY_ID]

    @property
    def by_creation_time(self) -> IndexInfo:
        return self.indexes[BY_CREATION_TIME]


def connect(path: str, *, writer: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=60)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL" if writer else "PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA mmap_size=2147418112")  # SQLite's default upper limit
    return conn


class ConnectionPool:
    """Read connections, handed out one per transaction."""

    def __init__(self, path: str):
        self._path = path
        self._free: list[sqlite3.Connection] = []
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def acquire(self) -> sqlite3.Connection:
        with self._lock:
            if self._free:
                return self._free.pop()
        conn = connect(self._path, writer=False)
        with self._lock:
            self._all.append(conn)
        return conn

    def release(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        with self._lock:
            self._free.append(conn)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
            self._free.clear()


_CONTAINERS = frozenset((dict, list, tuple))


def _canonical(value):
    kind = type(value)
    if kind is dict:
        return {name: _canonical(value[name]) for name in sorted(value)}
    if kind is list or kind is tuple:
        return [_canonical(item) for item in value]
    return value


def encode_document(doc: dict) -> bytes | str:
    """The stored form of a checked document: marshal of the document with its object fields
    sorted (the order JSON storage gave them). A value marshal cannot represent exactly (a str
    or float subclass from a trusting bulk load) falls back to the JSON text."""
    ordered = dict(sorted(doc.items()))  # field names are unique: values are never compared
    if not _CONTAINERS.isdisjoint(map(type, ordered.values())):
        ordered = {name: _canonical(value) for name, value in ordered.items()}
    try:
        return marshal.dumps(ordered, MARSHAL_VERSION)
    except ValueError:
        return keys.dumps_document(doc)


_loads = marshal.loads
_json_loads = json.loads


def decode_document(data: bytes | str) -> dict:
    if type(data) is bytes:
        return _loads(data)
    return values.decode(_json_loads(data))


def document_size(doc: dict) -> int:
    """values.value_size(doc), with the common flat fields inlined."""
    size = 2
    for name, value in doc.items():
        kind = type(value)
        if kind is str:
            size += len(name) + 3 + (len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass")))
        elif kind is float or kind is int:
            size += len(name) + 10
        elif value is None or kind is bool:
            size += len(name) + 2
        else:
            size += len(name) + 1 + values.value_size(value)
    return size


def check_document(doc: dict) -> int:
    """values.check_document_fields(doc) (same errors), returning values.value_size(doc), in one
    pass over the fields; anything unusual goes through values' full check for its exact error."""
    size = 2
    max_name, system_fields = values.MAX_FIELD_NAME_LENGTH, values.SYSTEM_FIELDS
    for name, value in doc.items():
        if (type(name) is not str or not name or not name.isascii() or not name.isprintable()
                or len(name) > max_name or name[0] == "$" or (name[0] == "_" and name not in system_fields)):
            return _checked_size(doc)
        kind = type(value)
        if kind is str:
            if value.isascii():
                size += len(name) + 3 + len(value)
                continue
            try:
                size += len(name) + 3 + len(value.encode("utf-8"))
            except UnicodeEncodeError:  # a lone surrogate
                return _checked_size(doc)
        elif kind is float:
            size += len(name) + 10
        elif value is None or kind is bool:
            size += len(name) + 2
        elif kind is int and values.INT64_MIN <= value <= values.INT64_MAX:
            size += len(name) + 10
        else:
            try:  # what check_value(doc) does for this field
                values.check_value(value, _depth=1)
                size += len(name) + 1 + values.value_size(value)
            except ValueError:
                return _checked_size(doc)  # the full check raises the first error, as values orders them
    if size > values.MAX_DOCUMENT_SIZE:
        values.check_document_fields(doc)  # raises the size error
    return size


def _checked_size(doc: dict) -> int:
    values.check_document_fields(doc)
    return document_size(doc)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring files written by earlier development versions to the current layout."""
    columns = [row[1] for row in conn.execute("PRAGMA table_info(documents)")]
    if "creation_time" in columns:
        conn.execute("ALTER TABLE documents DROP COLUMN creation_time")
    if "size" not in columns:
        conn.execute("ALTER TABLE documents ADD COLUMN size INTEGER")
    write_meta(conn, "format", FORMAT_VERSION)


def read_meta(conn: sqlite3.Connection, key: str, default: str | None = None) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return row[0] if row else default


def write_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))


def load_catalog(conn: sqlite3.Connection) -> dict[int, TableInfo]:
    tables = {number: TableInfo(number, name) for number, name in conn.execute("SELECT number, name FROM tables")}
    for index_id, number, name, fields in conn.execute("SELECT index_id, table_number, name, fields FROM indexes"):
        if number in tables:
            tables[number].indexes[name] = IndexInfo(index_id, number, name, tuple(json.loads(fields)))
    return tables


def persist_table(conn: sqlite3.Connection, table: TableInfo) -> None:
    conn.execute("INSERT OR IGNORE INTO tables(number, name) VALUES(?, ?)", (table.number, table.name))
    for index in table.indexes.values():
        persist_index(conn, index)


def persist_index(conn: sqlite3.Connection, index: IndexInfo) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO indexes(index_id, table_number, name, fields) VALUES(?, ?, ?, ?)",
        (index.index_id, index.table_number, index.name, json.dumps(list(index.fields))),
    )


def fetch_index_batch(conn, index: IndexInfo, lo: bytes, hi: bytes | None, desc: bool, limit: int) -> list:
    """Rows (key, id_key, json, size) of `index` with lo <= key < hi, in key order (reversed if desc)."""
    order = "DESC" if desc else "ASC"
    upper = "" if hi is None else " AND e.key < ?"
    if index.is_by_id:
        upper_d = "" if hi is None else " AND id_key < ?"
        sql = (
            f"SELECT id_key, id_key, json, size FROM documents WHERE table_number=? AND id_key >= ?{upper_d} "
            f"ORDER BY id_key {order} LIMIT ?"
        )
        params = (index.table_number, lo) + (() if hi is None else (hi,)) + (limit,)
    else:
        sql = (
            "SELECT e.key, d.id_key, d.json, d.size FROM index_entries e JOIN documents d ON d.rowid = e.doc "
            f"WHERE e.index_id=? AND e.key >= ?{upper} ORDER BY e.key {order} LIMIT ?"
        )
        params = (index.index_id, lo) + (() if hi is None else (hi,)) + (limit,)
    return conn.execute(sql, params).fetchall()


def fetch_document(conn, table_number: int, id_key: bytes) -> str | None:
    row = conn.execute(
        "SELECT json FROM documents WHERE table_number=? AND id_key=?", (table_number, id_key)
    ).fetchone()
    return row[0] if row else None


def fetch_count(conn, table_number: int) -> int:
    row = conn.execute("SELECT n FROM table_counts WHERE table_number=?", (table_number,)).fetchone()
    return row[0] if row else 0
