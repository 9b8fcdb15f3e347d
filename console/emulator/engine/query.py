"""SerializedQuery compilation (QUERIES §2.1-2.2), lazy index scans, streams and pages (§2.5, §2.7)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from console import values
from console.emulator.errors import ConvexEngineError, ConvexError

from . import keys, store
from .filters import compile_filter
from .validate import display_value

if TYPE_CHECKING:  # pragma: no cover
    from .transaction import ReadInterval, Transaction

MAX_QUERY_OPERATORS = 256
MAX_PAGE_SIZE = 32_000  # a page may not exceed the transaction's read limit
SOFT_MAX_PAGE_LEN = 1024
SEARCH_MAX_RESULTS = 1024
FIRST_BATCH = 64
MAX_BATCH = 1024


class InvalidCursor(ConvexError):
    """The backend's InvalidCursor: a ConvexError carrying a system `paginationError`."""

    MESSAGE = (
        "InvalidCursor: Tried to run a query starting from a cursor, but it looks like this cursor is "
        "from a different query."
    )

    def __init__(self):
        super().__init__({"isConvexSystemError": True, "paginationError": "InvalidCursor"})
        self.args = (self.MESSAGE,)

    def __str__(self) -> str:
        return self.MESSAGE


@dataclass
class SearchSpec:
    search_field: str
    text: str
    filters: list[tuple[str, Any]]


@dataclass
class CompiledQuery:
    table: store.TableInfo | None  # None: the table does not exist (empty results)
    index: store.IndexInfo | None
    start: bytes
    end: bytes | None
    desc: bool
    operators: list[tuple[str, Any]]
    fingerprint: str
    search: SearchSpec | None = None
    table_name: str | None = None


# ---------------------------------------------------------------------------
# Compilation


def _order(source: dict) -> bool:
    order = source.get("order")
    if order in (None, "asc"):
        return False
    if order == "desc":
        return True
    raise ConvexEngineError(f"Invalid query order {order!r}: expected \"asc\" or \"desc\"")


def _operators(query_json: dict) -> list[tuple[str, Any]]:
    raw = query_json.get("operators", [])
    if not isinstance(raw, list):
        raise ConvexEngineError("Invalid query: `operators` must be an array")
    if len(raw) > MAX_QUERY_OPERATORS:
        raise ConvexEngineError(f"Query has too many operators ({len(raw)} > maximum {MAX_QUERY_OPERATORS}).")
    compiled = []
    for op in raw:
        if isinstance(op, dict) and set(op) == {"filter"}:
            compiled.append(("filter", compile_filter(op["filter"])))
        elif isinstance(op, dict) and set(op) == {"limit"}:
            n = op["limit"]
            if isinstance(n, bool) or not isinstance(n, (int, float)) or n < 0 or int(n) != n:
                raise ConvexEngineError(f"Invalid query limit {n!r}: expected a non-negative integer")
            compiled.append(("limit", int(n)))
        else:
            raise ConvexEngineError(f"Invalid query operator: {json.dumps(op)}")
    return compiled


def _fingerprint(query_json: dict, index: store.IndexInfo | None) -> str:
    payload = json.dumps(
        {"query": query_json, "indexedFields": list(index.key_fields) if index else []},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def _split_index_name(name: Any) -> tuple[str, str]:
    if not isinstance(name, str) or "." not in name:
        raise ConvexEngineError(f"Invalid index name {name!r}: expected \"table.index\"")
    table, _, index = name.rpartition(".")
    return table, index


def compile_query(tx: "Transaction", query_json: Any) -> CompiledQuery:
    if not isinstance(query_json, dict) or not isinstance(query_json.get("source"), dict):
        raise ConvexEngineError("Invalid query: expected {source, operators}")
    source = query_json["source"]
    operators = _operators(query_json)
    kind = source.get("type")
    if kind == "FullTableScan":
        table = tx.db._table_by_name(source.get("tableName"))
        index = table.by_creation_time if table else None
        desc = _order(source)
        return CompiledQuery(table, index, b"", None, desc, operators, _fingerprint(query_json, index),
                             table_name=source.get("tableName"))
    if kind == "IndexRange":
        table_name, index_name = _split_index_name(source.get("indexName"))
        table = tx.db._table_by_name(table_name)
        desc = _order(source)
        if table is None:
            if index_name in (store.BY_ID, store.BY_CREATION_TIME):
                return CompiledQuery(None, None, b"", None, desc, operators, _fingerprint(query_json, None),
                                     table_name=table_name)
            raise ConvexEngineError(f"Index {table_name}.{index_name} not found.")
        index = table.indexes.get(index_name)
        if index is None:
            raise ConvexEngineError(f"Index {table_name}.{index_name} not found.")
        start, end = compile_range(f"{table_name}.{index_name}", index, source.get("range") or [])
        return CompiledQuery(table, index, start, end, desc, operators, _fingerprint(query_json, index))
    if kind == "Search":
        return _compile_search(tx, query_json, source, operators)
    raise ConvexEngineError(f"Invalid query source type {kind!r}")


def _compile_search(tx, query_json, source, operators) -> CompiledQuery:
    table_name, index_name = _split_index_name(source.get("indexName"))
    table = tx.db._table_by_name(table_name)
    definition = tx.db._search_index(table_name, index_name)
    if definition is None:
        raise ConvexEngineError(f"Index {table_name}.{index_name} not found.")
    text, eq_filters = None, []
    for f in source.get("filters") or []:
        if f.get("type") == "Search":
            if f.get("fieldPath") != definition.search_field:
                raise ConvexEngineError(
                    f"Search query against {table_name}.{index_name} contains a search filter against "
                    f"\"{f.get('fieldPath')}\", which doesn't match the indexed `searchField` "
                    f"\"{definition.search_field}\"."
                )
            text = f.get("value", "")
        elif f.get("type") == "Eq":
            if f.get("fieldPath") not in definition.filter_fields:
                raise ConvexEngineError(
                    f"Search query against {table_name}.{index_name} contains an equality filter on "
                    f"\"{f.get('fieldPath')}\" but that field isn't indexed for filtering in `filterFields`."
                )
            eq_filters.append((f["fieldPath"], _range_value(f.get("value"))))
        else:
            raise ConvexEngineError(f"Invalid search filter {json.dumps(f)}")
    if text is None:
        raise ConvexEngineError("Search query must contain a search filter.")
    spec = SearchSpec(definition.search_field, text, eq_filters)
    index = table.by_creation_time if table else None
    return CompiledQuery(table, index, b"", None, True, operators, _fingerprint(query_json, index), spec,
                         table_name=table_name)


def _range_value(encoded: Any) -> Any:
    try:
        return values.decode(encoded, allow_undefined=True)
    except ValueError as error:
        raise ConvexEngineError(f"Invalid index range value: {error}") from None


_BOUND = {"Gt": (False, False), "Gte": (False, True), "Lt": (True, False), "Lte": (True, True)}
_COMPARATOR = {"Gt": ">", "Gte": ">=", "Lt": "<", "Lte": "<="}


def _fields_display(fields) -> str:
    return "[" + ", ".join(fields) + "]"


def compile_range(index_name: str, index: store.IndexInfo, range_json: list) -> tuple[bytes, bytes | None]:
    """The backend's IndexRange::split + compile: a byte interval [start, end) over index keys."""
    equalities: dict[str, Any] = {}
    lower = upper = None  # (value, inclusive)
    inequality_field = None
    for expr in range_json:
        kind, path = expr.get("type"), expr.get("fieldPath")
        value = _range_value(expr.get("value"))
        if kind == "Eq":
            if path in equalities:
                raise ConvexEngineError(
                    f"Already defined equality bound in index range. Can't add \"{path}\" == {display_value(value)}."
                )
            equalities[path] = value
            continue
        if kind not in _BOUND:
            raise ConvexEngineError(f"Invalid index range expression type {kind!r}")
        is_upper, inclusive = _BOUND[kind]
        if (upper if is_upper else lower) is not None:
            raise ConvexEngineError(
                f"Already defined {'upper' if is_upper else 'lower'} bound in index range. "
                f"Can't add \"{path}\" {_COMPARATOR[kind]} {display_value(value)}."
            )
        if inequality_field is not None and inequality_field != path:
            raise ConvexEngineError(
                "Upper and lower bounds in `range` can only be applied to a single index field. This query "
                f"against index {index_name} attempted to set a range bound on both \"{inequality_field}\" and "
                f"\"{path}\". Consider using `filter` instead. See https://docs.convex.dev/using/indexes for "
                "more info."
            )
        inequality_field = path
        if is_upper:
            upper = (value, inclusive)
        else:
            lower = (value, inclusive)
    if inequality_field is not None and inequality_field in equalities:
        raise ConvexEngineError(
            "Already defined inequality bound in index range. Can't add "
            f"\"{inequality_field}\" == {display_value(equalities[inequality_field])}."
        )
    key_fields = index.key_fields
    rank = {name: i for i, name in enumerate(key_fields)}
    shown = _fields_display(key_fields)
    for path in [*equalities, *([inequality_field] if inequality_field else [])]:
        if path not in rank:
            raise ConvexEngineError(
                f"The index range included a comparison with \"{path}\", but {index_name} with fields {shown} "
                "doesn't index this field. For more information see https://docs.convex.dev/using/indexes."
            )
    ordered_eq = sorted(equalities, key=rank.__getitem__)
    used = ordered_eq + ([inequality_field] if inequality_field else [])
    for position, path in enumerate(used):
        if key_fields[position] != path:
            raise ConvexEngineError(
                f"Tried to query index {index_name} but the query didn't use the index fields in order.\n"
                f"Index fields: {shown}\nQuery fields: {_fields_display(used)}\nFirst incorrect field: {path}\n"
                "For more information see https://docs.convex.dev/using/indexes."
            )
    prefix = b"".join(keys.encode_value(equalities[p]) for p in ordered_eq)
    if inequality_field is None:
        return prefix, keys.prefix_end(prefix)
    if lower is None:
        start = prefix
    else:
        bound = prefix + keys.encode_value(lower[0])
        start = bound if lower[1] else (keys.prefix_end(bound) or bound + b"\xff" * 8)
    if upper is None:
        end = keys.prefix_end(prefix)
    else:
        bound = prefix + keys.encode_value(upper[0])
        end = keys.prefix_end(bound) if upper[1] else bound
    return start, end


# ---------------------------------------------------------------------------
# Scans


decode_document = store.decode_document


class IndexScan:
    """Lazy scan of one index interval in key order, merged with the transaction's pending writes."""

    def __init__(self, tx: "Transaction", index: store.IndexInfo, lo: bytes, hi: bytes | None, desc: bool,
                 interval: "ReadInterval", batch: int = FIRST_BATCH):
        self.tx, self.index, self.lo, self.hi, self.desc = tx, index, lo, hi, desc
        self.interval = interval
        self.buffer: list = []  # reversed: pop() gives the next row
        self.sql_last: bytes | None = None
        self.sql_done = hi is not None and lo >= hi
        self.batch = batch
        self.done = False
        self.last_key: bytes | None = None
        self.last_size: int | None = None  # stored size of the last SQL row (None: compute it)

    def _refill(self) -> None:
        # Resume after the last row fetched (not the last returned: shadowed rows are skipped).
        lo, hi = self.lo, self.hi
        if self.sql_last is not None:
            if self.desc:
                hi = self.sql_last if hi is None else min(hi, self.sql_last)
            else:
                lo = max(lo, keys.successor(self.sql_last))
        rows = store.fetch_index_batch(self.tx._conn, self.index, lo, hi, self.desc, self.batch)
        if len(rows) < self.batch:
            self.sql_done = True
        if rows:
            self.sql_last = rows[-1][0]
        self.batch = min(self.batch * 2, MAX_BATCH)
        rows.reverse()
        self.buffer = rows

    def _next_sql(self):
        while True:
            if not self.buffer:
                if self.sql_done:
                    return None
                self._refill()
                continue
            row = self.buffer[-1]
            if self.tx._writes and keys.id_from_key(row[1]) in self.tx._writes:
                self.buffer.pop()  # shadowed: this document's current version lives in the overlay
                continue
            return row

    def next(self) -> tuple[bytes, dict] | None:
        """The next (key, document), or None when the interval is exhausted."""
        if self.done:
            return None
        tx = self.tx
        if not tx._writes:  # nothing pending in this transaction: the SQL rows are the scan
            if not self.buffer:
                if not self.sql_done:
                    self._refill()
                if not self.buffer:  # a short refill sets sql_done
                    self._finish()
                    return None
            row = self.buffer.pop()
            key = row[0]
            self.last_size = row[3]
            self._advance(key)
            return key, decode_document(row[2])
        row = self._next_sql()
        pending = tx._overlay_next(self.index.index_id, self.lo, self.hi, self.desc) if tx._overlays else None
        if row is None and pending is None:
            self._finish()
            return None
        if pending is not None and (row is None or (pending[0] > row[0] if self.desc else pending[0] < row[0])):
            key, doc = pending
            self.last_size = None
        else:
            self.buffer.pop()
            key, doc = row[0], decode_document(row[2])
            self.last_size = row[3]
        self._advance(key)
        return key, doc

    def _advance(self, key: bytes) -> None:
        self.last_key = key
        if self.desc:
            self.hi = key
            self.interval.start = key
        else:
            self.lo = keys.successor(key)
            self.interval.end = self.lo

    def _finish(self) -> None:
        self.done = True
        if self.desc:
            self.interval.start = self.interval.floor
        else:
            self.interval.end = self.interval.ceiling


class ListScan:
    """Pre-computed results (search): same interface as IndexScan, without cursor keys."""

    def __init__(self, rows: list[dict]):
        self.rows = rows[::-1]
        self.last_key = None
        self.last_size = None
        self.done = False

    def next(self):
        if not self.rows:
            self.done = True
            return None
        return None, self.rows.pop()


_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def _tokens(text: str) -> list[str]:
    return [t.lower()[:32] for t in _TOKEN.findall(text)]


def run_search(tx: "Transaction", compiled: CompiledQuery) -> list[dict]:
    """Simplified full-text search: every query term matches a document word, the last one as a
    prefix; ranked by the number of matching words, ties newest first. Scans the table."""
    terms = _tokens(compiled.search.text)[:16]
    if not terms or compiled.table is None:
        tx._read_whole_table(compiled.table, compiled.table_name)
        return []
    scan = tx._scan(compiled.table.by_creation_time, b"", None, True)
    scored = []
    while (item := scan.next()) is not None:
        doc = item[1]
        if any(values.compare(keys.get_path(doc, f), v) != 0 for f, v in compiled.search.filters):
            continue
        text = keys.get_path(doc, compiled.search.search_field)
        if not isinstance(text, str):
            continue
        words = _tokens(text)
        score = _score(terms, words)
        if score:
            scored.append((score, len(scored), doc))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [doc for _, _, doc in scored[:SEARCH_MAX_RESULTS]]


def _score(terms: list[str], words: list[str]) -> int:
    *exact, last = terms
    word_set = set(words)
    if any(t not in word_set for t in exact):
        return 0
    prefix_hits = sum(1 for w in words if w.startswith(last))
    if not prefix_hits:
        return 0
    return sum(1 for w in words if w in exact) + prefix_hits


# ---------------------------------------------------------------------------
# Streams


class QueryStream:
    """A scan with the query's operators applied in order (filters, limits)."""

    def __init__(self, scan, operators: list[tuple[str, Any]], track_bytes: bool = False):
        self.scan = scan
        self.operators = operators
        self.counts = [0] * len(operators)
        self.limits = [(i, arg) for i, (kind, arg) in enumerate(operators) if kind == "limit"]
        self.done = False
        self.rows_read = 0
        self.bytes_read = 0
        self.track_bytes = track_bytes

    def _limit_reached(self) -> bool:
        counts = self.counts
        return any(counts[i] >= arg for i, arg in self.limits)

    def next(self) -> tuple[bytes | None, dict] | None:
        scan = self.scan
        while not self.done:
            if self.limits and self._limit_reached():
                self.done = True
                break
            item = scan.next()
            if item is None:
                self.done = True
                break
            self.rows_read += 1
            if self.track_bytes:
                size = scan.last_size
                self.bytes_read += size if size is not None else store.document_size(item[1])
            if not self.operators or self._passes(item[1]):
                return item
        return None

    def _passes(self, doc: dict) -> bool:
        for i, (kind, arg) in enumerate(self.operators):
            if kind == "filter":
                if not arg(doc):
                    return False
            else:
                self.counts[i] += 1
        return True


# ---------------------------------------------------------------------------
# Cursors and pages


def encode_cursor(fingerprint: str, key: bytes | None) -> str:
    payload = {"f": fingerprint, "k": None if key is None else base64.b64encode(key).decode("ascii")}
    raw = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


_END = object()


def decode_cursor(cursor: str, fingerprint: str):
    """The key after which to resume, or _END; InvalidCursor for a foreign or malformed cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        if payload["f"] != fingerprint:
            raise InvalidCursor()
        return _END if payload["k"] is None else base64.b64decode(payload["k"], validate=True)
    except InvalidCursor:
        raise
    except Exception:
        raise InvalidCursor() from None


def _check_limit(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConvexEngineError(f"Invalid {name}: {value!r}")
    if value == 0:
        raise ConvexEngineError(f"{name} must be greater than 0 (InvalidPaginationLimit).")
    return int(value)


def run_page(tx: "Transaction", query_json: Any, *, cursor, end_cursor, page_size, maximum_rows_read,
             maximum_bytes_read) -> dict:
    if isinstance(page_size, bool) or not isinstance(page_size, (int, float)) or page_size < 0:
        raise ConvexEngineError(f"Invalid pageSize {page_size!r}: expected a non-negative number")
    max_rows = _check_limit("maximumRowsRead", maximum_rows_read)
    max_bytes = _check_limit("maximumBytesRead", maximum_bytes_read)
    compiled = compile_query(tx, query_json)
    if compiled.search is not None:
        return _search_page(tx, compiled)
    fingerprint = compiled.fingerprint
    start_after = None if cursor is None else decode_cursor(cursor, fingerprint)
    end_at = None if end_cursor is None else decode_cursor(end_cursor, fingerprint)
    if end_at is None:
        if page_size == 0:
            raise ConvexEngineError(
                "NoDocumentsForPagination: Pagination requires a positive number of items per page "
                "(numItems must be greater than 0)."
            )
        if page_size > MAX_PAGE_SIZE:
            raise ConvexEngineError(
                f"PageSizeTooLarge: Requested page size {int(page_size)} is larger than the maximum "
                f"of {MAX_PAGE_SIZE}."
            )
    if start_after is _END or compiled.table is None:
        if compiled.table is None:
            tx._read_whole_table(None, compiled.table_name)
        return _page_result([], encode_cursor(fingerprint, None), True, None, None)
    lo, hi = compiled.start, compiled.end
    if start_after is not None:
        lo, hi = (lo, _min_end(hi, start_after)) if compiled.desc else (max(lo, keys.successor(start_after)), hi)
    if isinstance(end_at, bytes):
        lo, hi = (max(lo, end_at), hi) if compiled.desc else (lo, _min_end(hi, keys.successor(end_at)))
    first_batch = MAX_BATCH if end_at is not None else max(1, min(int(page_size) + 1, MAX_BATCH))
    scan = tx._scan(compiled.index, lo, hi, compiled.desc, first_batch)
    stream = QueryStream(scan, compiled.operators, max_bytes is not None)
    page, page_keys, status = [], [], None
    while True:
        if end_at is None and len(page) >= page_size:
            break
        if (max_rows is not None and stream.rows_read >= max_rows) or (
            max_bytes is not None and stream.bytes_read >= max_bytes
        ):
            status = "SplitRequired"
            break
        item = stream.next()
        if item is None:
            break
        # A pending document is the transaction's own (staged with its index keys): hand out a copy.
        page.append(dict(item[1]) if tx._writes else item[1])
        page_keys.append(item[0])
    exhausted = stream.done  # the scan ended, or a limit operator closed the stream
    if end_cursor is not None and status is None:
        continue_cursor, is_done = end_cursor, end_at is _END
    elif exhausted and status is None:
        continue_cursor, is_done = encode_cursor(fingerprint, None), True
    else:
        last = stream.scan.last_key
        # Nothing scanned yet (only with limits hit at once): resume where this page started.
        continue_cursor = encode_cursor(fingerprint, last) if last is not None else cursor
        is_done = False
        if continue_cursor is None:
            continue_cursor, is_done = encode_cursor(fingerprint, None), True
    if status is None and len(page) > SOFT_MAX_PAGE_LEN:
        status = "SplitRecommended"
    split = None
    if status is not None and len(page_keys) >= 2:
        split = encode_cursor(fingerprint, page_keys[len(page_keys) // 2 - 1])
    return _page_result(page, continue_cursor, is_done, split, status)


def _min_end(hi: bytes | None, bound: bytes) -> bytes:
    return bound if hi is None else min(hi, bound)


def _search_page(tx, compiled) -> dict:
    rows = run_search(tx, compiled)
    stream = QueryStream(ListScan(rows), compiled.operators)
    page = []
    while (item := stream.next()) is not None:
        page.append(item[1])
    return _page_result(page, encode_cursor(compiled.fingerprint, None), True, None, None)


def _page_result(page, continue_cursor, is_done, split, status) -> dict:
    return {
        "page": page,
        "isDone": is_done,
        "continueCursor": continue_cursor,
        "splitCursor": split,
        "pageStatus": status,
    }
