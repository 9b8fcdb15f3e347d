"""The Python authoring API for Convex functions, mirroring `convex/server`.

```python
from console.emulator.functions import query, mutation, action, ConvexError
from console.emulator.validators import v

@query(args={"id": v.id("posts")})
def get(ctx, args):
    return ctx.db.get(args["id"])
```

`ctx.db` builds SerializedQuery JSON and calls the engine transaction exactly as the JS
library calls its syscalls (QUERIES §1-2). The runner (`runtime.py`) creates the contexts.
"""

from __future__ import annotations

import datetime
import math
from typing import Any, Callable, Iterator

from console import values
from console.emulator import validators
from console.emulator.errors import ConvexEngineError, ConvexError
from console.values import UNDEFINED

__all__ = [
    "query", "mutation", "action", "internal_query", "internal_mutation", "internal_action",
    "http_action", "ConvexError", "ConvexFunction", "HttpAction", "UNDEFINED",
    "QueryCtx", "MutationCtx", "ActionCtx",
]

MAX_QUERY_OPERATORS = 256
SINGLE_PAGINATE_MESSAGE = (
    "This query or mutation function ran multiple paginated queries. "
    "Convex only supports a single paginated query in each function."
)
RUN_ACTION_FROM_MUTATION_MESSAGE = (
    "Actions cannot be called from mutations: ctx.run_action is only available in actions. "
    "Schedule the action instead, with `ctx.scheduler.run_after(0, ...)`: it runs right after "
    "the mutation commits."
)


# ---------------------------------------------------------------------------
# Registration


class ConvexFunction:
    """A registered query, mutation or action (what `query(...)` and friends return)."""

    def __init__(self, udf_type: str, visibility: str, handler: Callable, args=None, returns=None):
        if not callable(handler):
            raise TypeError(f"{udf_type} handler must be callable, got {handler!r}")
        self.udf_type = udf_type
        self.visibility = visibility
        self.handler = handler
        self.args_validator = validators.as_object_validator(args)
        self.returns_validator = validators.as_object_validator(returns)
        self.path: str | None = None  # canonical path, set when an App registers it
        self.__doc__ = handler.__doc__
        self.__name__ = getattr(handler, "__name__", udf_type)
        self.__wrapped__ = handler

    @property
    def args_json(self) -> dict | None:
        return None if self.args_validator is None else self.args_validator.json()

    @property
    def returns_json(self) -> dict | None:
        return None if self.returns_validator is None else self.returns_validator.json()

    def export_args(self) -> dict:
        """As `exportArgs()`: `{"type": "any"}` when no args validator was given."""
        return self.args_json or {"type": "any"}

    def export_returns(self) -> dict | None:
        return self.returns_json

    def __call__(self, ctx, args=None):
        """Calling directly runs the handler, without validation (prefer ctx.run_*)."""
        return self.handler(ctx, {} if args is None else args)

    def __repr__(self) -> str:
        return f"<{self.visibility} {self.udf_type} {self.path or self.__name__}>"


class HttpAction:
    """An HTTP action handler (`httpAction`): `handler(ctx, request) -> response`."""

    udf_type = "http_action"
    is_http = True

    def __init__(self, handler: Callable):
        if not callable(handler):
            raise TypeError("http_action needs a callable handler")
        self.handler = handler
        self.__name__ = getattr(handler, "__name__", "http_action")

    def __call__(self, ctx, request):
        return self.handler(ctx, request)


def _builder(udf_type: str, visibility: str):
    def register(handler: Callable | None = None, *, args=None, returns=None):
        if handler is not None:
            return ConvexFunction(udf_type, visibility, handler, args, returns)

        def decorate(fn: Callable) -> ConvexFunction:
            return ConvexFunction(udf_type, visibility, fn, args, returns)

        return decorate

    register.__name__ = f"{'internal_' if visibility == 'internal' else ''}{udf_type}"
    return register


query = _builder("query", "public")
mutation = _builder("mutation", "public")
action = _builder("action", "public")
internal_query = _builder("query", "internal")
internal_mutation = _builder("mutation", "internal")
internal_action = _builder("action", "internal")


def http_action(handler: Callable) -> HttpAction:
    return HttpAction(handler)


# ---------------------------------------------------------------------------
# Filter expressions (QUERIES §2.3)


class Expression:
    """A filter expression; `.json` is its serialized form."""

    __slots__ = ("json",)

    def __init__(self, json_value: Any):
        self.json = json_value

    def __bool__(self):
        raise TypeError(
            "A filter expression has no truth value: combine expressions with "
            "q.and_/q.or_/q.not_ instead of Python's and/or/not."
        )

    def __repr__(self) -> str:
        return f"Expression({self.json!r})"


def serialize_expression(value: Any) -> Any:
    if isinstance(value, Expression):
        return value.json
    return {"$literal": values.encode(value)}


class FilterBuilder:
    """The `q` of `.filter(lambda q: ...)`."""

    def field(self, path: str) -> Expression:
        if not isinstance(path, str):
            raise ConvexEngineError("q.field(path) needs a field path string")
        return Expression({"$field": path})

    def _binary(op: str):  # noqa: N805 - builds methods
        def method(self, left, right) -> Expression:
            return Expression({op: [serialize_expression(left), serialize_expression(right)]})

        method.__name__ = op[1:]
        return method

    eq = _binary("$eq")
    neq = _binary("$neq")
    lt = _binary("$lt")
    lte = _binary("$lte")
    gt = _binary("$gt")
    gte = _binary("$gte")
    add = _binary("$add")
    sub = _binary("$sub")
    mul = _binary("$mul")
    div = _binary("$div")
    mod = _binary("$mod")
    del _binary

    def neg(self, value) -> Expression:
        return Expression({"$neg": serialize_expression(value)})

    def and_(self, *exprs) -> Expression:
        return Expression({"$and": [serialize_expression(e) for e in exprs]})

    def or_(self, *exprs) -> Expression:
        return Expression({"$or": [serialize_expression(e) for e in exprs]})

    def not_(self, value) -> Expression:
        return Expression({"$not": serialize_expression(value)})


_FILTER_BUILDER = FilterBuilder()


class IndexRangeBuilder:
    """The `q` of `.with_index(name, lambda q: q.eq(...).gt(...))`."""

    def __init__(self, range_exprs: tuple = ()):
        self._range = range_exprs

    def _add(self, kind: str, field: str, value: Any) -> "IndexRangeBuilder":
        if not isinstance(field, str):
            raise ConvexEngineError(f"Index range field name must be a string, got {field!r}")
        expr = {"type": kind, "fieldPath": field, "value": values.encode(value)}
        return IndexRangeBuilder(self._range + (expr,))

    def eq(self, field: str, value: Any):
        return self._add("Eq", field, value)

    def gt(self, field: str, value: Any):
        return self._add("Gt", field, value)

    def gte(self, field: str, value: Any):
        return self._add("Gte", field, value)

    def lt(self, field: str, value: Any):
        return self._add("Lt", field, value)

    def lte(self, field: str, value: Any):
        return self._add("Lte", field, value)

    def export(self) -> list:
        return list(self._range)


class SearchFilterBuilder:
    """The `q` of `.with_search_index(name, lambda q: q.search(field, text).eq(...))`."""

    def __init__(self, filters: tuple = ()):
        self._filters = filters

    def search(self, field: str, text: str) -> "SearchFilterBuilder":
        return SearchFilterBuilder(self._filters + ({"type": "Search", "fieldPath": field, "value": text},))

    def eq(self, field: str, value: Any) -> "SearchFilterBuilder":
        expr = {"type": "Eq", "fieldPath": field, "value": values.encode(value)}
        return SearchFilterBuilder(self._filters + (expr,))

    def export(self) -> list:
        return list(self._filters)


# ---------------------------------------------------------------------------
# Queries


class Query:
    """A query under construction or being read (`QueryImpl`). Chain once, read once."""

    def __init__(self, execution, serialized: dict):
        self._execution = execution
        self._query = serialized
        self._state = "preparing"
        source = serialized["source"]
        self._table = source.get("tableName") or source["indexName"].split(".")[0]

    # -- chaining
    def _take_query(self) -> dict:
        if self._state != "preparing":
            raise ConvexEngineError(
                "A query can only be chained once and can't be chained after iteration begins."
            )
        self._state = "closed"
        return self._query

    def order(self, order: str) -> "Query":
        if order not in ("asc", "desc"):
            raise ConvexEngineError(f'order must be "asc" or "desc", got {order!r}')
        query = self._take_query()
        if query["source"]["type"] == "Search":
            raise ConvexEngineError(
                "Search queries must always be in relevance order. Can not set order manually."
            )
        if query["source"]["order"] is not None:
            raise ConvexEngineError("Queries may only specify order at most once")
        query["source"]["order"] = order
        return Query(self._execution, query)

    def filter(self, predicate: Callable[[FilterBuilder], Any]) -> "Query":
        query = self._take_query()
        if len(query["operators"]) >= MAX_QUERY_OPERATORS:
            raise ConvexEngineError(f"Can't construct query with more than {MAX_QUERY_OPERATORS} operators")
        query["operators"].append({"filter": serialize_expression(predicate(_FILTER_BUILDER))})
        return Query(self._execution, query)

    def limit(self, n: int) -> "Query":
        query = self._take_query()
        query["operators"].append({"limit": n})
        return Query(self._execution, query)

    # -- reading
    def __iter__(self) -> Iterator[dict]:
        if self._state == "executing":
            raise ConvexEngineError("Iteration can only begin on a query once.")
        if self._state != "preparing":
            raise ConvexEngineError(
                "This query is closed and can't emit any more values."
                if self._state == "consumed"
                else "This query has been chained with another operator and can't be reused."
            )
        return self._stream()

    def _stream(self) -> Iterator[dict]:
        tx = self._execution.require_tx()
        query_id = tx.query_stream(self._query)
        self._state = "executing"
        done = False
        try:
            while True:
                doc, done = tx.query_stream_next(query_id)
                if done:
                    return
                yield doc
        finally:
            self._state = "consumed"
            if not done:
                tx.query_cleanup(query_id)

    def collect(self) -> list[dict]:
        return list(self)

    def take(self, n: int) -> list[dict]:
        if isinstance(n, bool) or not isinstance(n, (int, float)) or n < 0 or int(n) != n:
            raise ConvexEngineError(f"Argument `n` to `take` must be a non-negative integer, got {n!r}")
        return self.limit(int(n)).collect()

    def first(self) -> dict | None:
        found = self.take(1)
        return found[0] if found else None

    def unique(self) -> dict | None:
        found = self.take(2)
        if not found:
            return None
        if len(found) == 2:
            raise ConvexEngineError(
                f"unique() query returned more than one result from table {self._table}:\n"
                f" [{found[0]['_id']}, {found[1]['_id']}, ...]"
            )
        return found[0]

    def paginate(self, opts: dict) -> dict:
        """One page: `{page, isDone, continueCursor, splitCursor, pageStatus}` (QUERIES §2.7)."""
        num_items = opts.get("numItems") if isinstance(opts, dict) else None
        if isinstance(num_items, bool) or not isinstance(num_items, (int, float)) or num_items < 0:
            raise ConvexEngineError(
                f"`options.numItems` must be a positive number. Received `{_js_repr(num_items)}`."
            )
        query = self._take_query()
        self._execution.count_paginate()
        tx = self._execution.require_tx()
        result = tx.query_page(
            query,
            cursor=opts.get("cursor"),
            end_cursor=opts.get("endCursor"),
            page_size=int(num_items),
            maximum_rows_read=_int_or_none(opts.get("maximumRowsRead")),
            maximum_bytes_read=_int_or_none(opts.get("maximumBytesRead")),
        )
        return {
            "page": list(result["page"]),
            "isDone": result["isDone"],
            "continueCursor": result["continueCursor"],
            "splitCursor": result.get("splitCursor"),
            "pageStatus": result.get("pageStatus"),
        }

    def serialized(self) -> dict:
        """The SerializedQuery JSON this query sends (for tests and debugging)."""
        return self._query


def _int_or_none(value):
    return None if value is None else int(value)


def _js_repr(value) -> str:
    return "undefined" if value is None else str(value)


class QueryInitializer(Query):
    """`ctx.db.query(table)`: a full table scan until narrowed by an index."""

    def __init__(self, execution, table: str):
        super().__init__(execution, {"source": {"type": "FullTableScan", "tableName": table, "order": None}, "operators": []})
        self._table_name = table

    def full_table_scan(self) -> Query:
        return Query(self._execution, self._take_query())

    def with_index(self, index_name: str, range_fn: Callable | None = None) -> Query:
        self._take_query()
        builder = IndexRangeBuilder()
        if range_fn is not None:
            builder = range_fn(builder)
            if not isinstance(builder, IndexRangeBuilder):
                raise ConvexEngineError("The with_index range function must return the builder (q.eq(...)...)")
        source = {"type": "IndexRange", "indexName": f"{self._table_name}.{index_name}", "range": builder.export(), "order": None}
        return Query(self._execution, {"source": source, "operators": []})

    def with_search_index(self, index_name: str, search_fn: Callable) -> Query:
        self._take_query()
        builder = search_fn(SearchFilterBuilder())
        source = {"type": "Search", "indexName": f"{self._table_name}.{index_name}", "filters": builder.export()}
        return Query(self._execution, {"source": source, "operators": []})

    def count(self) -> int:
        """The number of documents in the table (ignores filters, as Convex's `count`)."""
        return self._execution.require_tx().count(self._table_name)


# ---------------------------------------------------------------------------
# Database readers and writers


_WRITE_METHODS = ("insert", "patch", "replace", "delete")


class DatabaseReader:
    def __init__(self, execution, *, is_system: bool = False):
        self._execution = execution
        self._is_system = is_system
        if not is_system:
            self.system = DatabaseReader(execution, is_system=True)

    def _check_table_kind(self, table: str, what: str) -> None:
        accessing_system = table.startswith("_")
        if accessing_system != self._is_system:
            kind = "System" if accessing_system else "User"
            where = "" if self._is_system else "system."
            raise ConvexEngineError(f"{kind} tables can only be accessed from db.{where}{what}().")

    def get(self, table_or_id: str, id_: str | None = None) -> dict | None:
        table, doc_id = (None, table_or_id) if id_ is None else (table_or_id, id_)
        if not isinstance(doc_id, str):
            raise ConvexEngineError(
                f"Invalid argument `id` for `db.get`, expected string but got "
                f"'{values.type_name(doc_id) if _is_value(doc_id) else type(doc_id).__name__}': {doc_id!r}"
            )
        return self._execution.require_tx().get(doc_id, table=table, is_system=self._is_system)

    def query(self, table: str) -> QueryInitializer:
        if not isinstance(table, str):
            raise ConvexEngineError(f"db.query(table) needs a table name string, got {table!r}")
        self._check_table_kind(table, "query")
        return QueryInitializer(self._execution, table)

    def normalize_id(self, table: str, id_string: str) -> str | None:
        self._check_table_kind(table, "normalizeId")
        return self._execution.require_tx().normalize_id(table, id_string)

    def __getattr__(self, name: str):
        if name in _WRITE_METHODS:
            raise ConvexEngineError(
                f"ctx.db.{name} is not available in a {self._execution.udf_type}: "
                f"{'queries are read-only; write from a mutation' if self._execution.udf_type == 'query' else 'system tables are read-only'}."
            )
        raise AttributeError(name)


def _is_value(value) -> bool:
    try:
        values.type_name(value)
        return True
    except ValueError:
        return False


class DatabaseWriter(DatabaseReader):
    def _split(self, args: tuple, what: str, with_value: bool):
        expected = 2 if with_value else 1
        if len(args) == expected + 1:
            return args[0], args[1:]
        if len(args) == expected:
            return None, args
        raise ConvexEngineError(f"db.{what} takes {'([table,] id, value)' if with_value else '([table,] id)'}")

    def insert(self, table: str, value: dict) -> str:
        if not isinstance(table, str):
            raise ConvexEngineError(f"db.insert(table, value) needs a table name string, got {table!r}")
        if table.startswith("_"):
            raise ConvexEngineError("System tables (prefixed with `_`) are read-only.")
        return self._execution.require_tx().insert(table, value)

    def patch(self, *args) -> None:
        table, (doc_id, value) = self._split(args, "patch", True)
        self._execution.require_tx().shallow_merge(doc_id, value, table=table, is_system=False)

    def replace(self, *args) -> None:
        table, (doc_id, value) = self._split(args, "replace", True)
        self._execution.require_tx().replace(doc_id, value, table=table, is_system=False)

    def delete(self, *args) -> None:
        table, (doc_id,) = self._split(args, "delete", False)
        self._execution.require_tx().remove(doc_id, table=table, is_system=False)


# ---------------------------------------------------------------------------
# Auth, storage, scheduler, env


class Auth:
    def __init__(self, identity):
        self._identity = identity

    def get_user_identity(self) -> dict | None:
        return self._identity.user_attributes


class _Service:
    def __init__(self, execution, service_name: str):
        self._execution = execution
        self._service_name = service_name

    def _service(self):
        return self._execution.service(self._service_name)


class StorageReader(_Service):
    def __init__(self, execution):
        super().__init__(execution, "storage")

    def get_url(self, storage_id: str) -> str | None:
        return self._service().get_url(storage_id, tx=self._execution.tx)

    def get_metadata(self, storage_id: str) -> dict | None:
        return self._service().get_metadata(storage_id, tx=self._execution.tx)


class StorageWriter(StorageReader):
    def generate_upload_url(self) -> str:
        return self._service().generate_upload_url()

    def delete(self, storage_id: str) -> None:
        self._service().delete(storage_id, tx=self._execution.tx)


class ActionStorage(StorageWriter):
    def get(self, storage_id: str) -> bytes | None:
        return self._service().get(storage_id)

    def store(self, data: bytes, content_type: str | None = None) -> str:
        return self._service().store(data, content_type)


class Scheduler(_Service):
    def __init__(self, execution):
        super().__init__(execution, "scheduler")

    def run_after(self, delay_ms: float, function, args: dict | None = None) -> str:
        if isinstance(delay_ms, bool) or not isinstance(delay_ms, (int, float)):
            raise ConvexEngineError("`delayMs` must be a number")
        if not math.isfinite(delay_ms):
            raise ConvexEngineError("`delayMs` must be a finite number")
        if delay_ms < 0:
            raise ConvexEngineError("`delayMs` must be non-negative")
        return self._schedule(function, args, self._execution.now_ms() + delay_ms)

    def run_at(self, timestamp, function, args: dict | None = None) -> str:
        if isinstance(timestamp, datetime.datetime):
            ts_ms = timestamp.timestamp() * 1000
        elif isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool):
            ts_ms = float(timestamp)
        else:
            raise ConvexEngineError("The invoke time must a Date or a timestamp")
        return self._schedule(function, args, ts_ms)

    def cancel(self, job_id: str) -> None:
        self._service().cancel(job_id, tx=self._execution.tx)

    def _schedule(self, function, args, ts_ms: float) -> str:
        path = self._execution.resolve_schedule_target(function)
        return self._service().schedule(path, {} if args is None else args, ts_ms, tx=self._execution.tx)


class Env:
    """Deployment environment variables, like `process.env`."""

    def __init__(self, provider):
        self._provider = provider

    def _all(self) -> dict:
        found = self._provider() if callable(self._provider) else self._provider
        return dict(found or {})

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._all().get(name, default)

    def __getitem__(self, name: str) -> str:
        return self._all()[name]

    def __contains__(self, name: str) -> bool:
        return name in self._all()

    def keys(self):
        return self._all().keys()


# ---------------------------------------------------------------------------
# Contexts


class QueryCtx:
    """`ctx` of a query: read-only db, auth, storage reader, `run_query`."""

    def __init__(self, execution):
        self._execution = execution
        self.db = DatabaseReader(execution)
        self.auth = Auth(execution.identity)
        self.storage = StorageReader(execution)
        self.env = Env(execution.env_provider)

    def run_query(self, function, args: dict | None = None):
        return self._execution.run_nested(function, args, "query")

    @property
    def scheduler(self):
        raise ConvexEngineError("ctx.scheduler is not available in queries: schedule from a mutation or an action.")


class MutationCtx(QueryCtx):
    """`ctx` of a mutation: read-write db, auth, storage, scheduler, `run_query`/`run_mutation`."""

    def __init__(self, execution):
        super().__init__(execution)
        self.db = DatabaseWriter(execution)
        self.storage = StorageWriter(execution)
        self._scheduler = Scheduler(execution)

    @property
    def scheduler(self) -> Scheduler:
        return self._scheduler

    def run_mutation(self, function, args: dict | None = None):
        return self._execution.run_nested(function, args, "mutation")

    @property
    def run_action(self):
        raise ConvexEngineError(RUN_ACTION_FROM_MUTATION_MESSAGE)


class ActionCtx:
    """`ctx` of an action: no db; run_query/run_mutation/run_action, auth, storage, scheduler, env."""

    def __init__(self, execution):
        self._execution = execution
        self.auth = Auth(execution.identity)
        self.storage = ActionStorage(execution)
        self.scheduler = Scheduler(execution)
        self.env = Env(execution.env_provider)

    def run_query(self, function, args: dict | None = None):
        return self._execution.run_from_action(function, args, "query")

    def run_mutation(self, function, args: dict | None = None):
        return self._execution.run_from_action(function, args, "mutation")

    def run_action(self, function, args: dict | None = None):
        return self._execution.run_from_action(function, args, "action")

    @property
    def db(self):
        raise ConvexEngineError(
            "ctx.db is not available in actions: read with ctx.run_query and write with ctx.run_mutation."
        )
