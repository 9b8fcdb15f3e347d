"""Engine semantics: CRUD and messages, indexes, queries, pagination, schema, syscalls."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console import ids, values
from console.emulator.clock import ManualClock
from console.emulator.engine import (
    ConflictError,
    Database,
    IndexDefinition,
    InvalidCursor,
    SchemaDefinition,
    SearchIndexDefinition,
    TableDefinition,
    ValidationError,
    validate_value,
)
from console.emulator.engine import syscalls
from console.emulator.errors import ConvexEngineError, ConvexError
from console.values import UNDEFINED


@pytest.fixture
def db():
    database = Database.open(None)
    yield database
    database.close()


def scan(table, order=None, operators=()):
    return {"source": {"type": "FullTableScan", "tableName": table, "order": order}, "operators": list(operators)}


def index_query(index, rng=(), order=None, operators=()):
    return {"source": {"type": "IndexRange", "indexName": index, "range": list(rng), "order": order},
            "operators": list(operators)}


def eq(field, value):
    return {"type": "Eq", "fieldPath": field, "value": values.encode(value)}


def insert(db, table, doc):
    return db.write(lambda tx: tx.insert(table, doc))[0]


# ---------------------------------------------------------------------------
# CRUD


def test_insert_assigns_system_fields_and_get_returns_the_document(db):
    doc_id = insert(db, "posts", {"title": "hi", "n": 3, "tags": ["a"], "raw": b"\x00"})
    number, _ = ids.decode_id(doc_id)
    assert number == 10001 and len(doc_id) == 32
    doc = db.read(lambda tx: tx.get(doc_id))
    assert doc["title"] == "hi" and doc["n"] == 3 and doc["raw"] == b"\x00"
    assert isinstance(doc["_creationTime"], float) and doc["_id"] == doc_id
    assert db.table_mapping() == {10001: "posts"}


def test_creation_times_are_unique_and_increasing_with_a_frozen_clock():
    database = Database.open(None, clock=ManualClock(start_ns=1_700_000_000_000_000_000))
    try:
        ids_ = database.bulk_insert("t", [{} for _ in range(50)]) + [insert(database, "t", {}) for _ in range(5)]
        docs = database.read(lambda tx: tx.collect(scan("t")))
        times = [d["_creationTime"] for d in docs]
        assert [d["_id"] for d in docs] == ids_
        assert all(a < b for a, b in zip(times, times[1:]))
    finally:
        database.close()


def test_patch_merges_shallowly_and_undefined_removes(db):
    doc_id = insert(db, "t", {"a": 1, "b": {"x": 1}, "c": "keep"})
    db.write(lambda tx: tx.shallow_merge(doc_id, {"a": UNDEFINED, "b": {"y": 2}, "d": None}))
    doc = db.read(lambda tx: tx.get(doc_id))
    assert "a" not in doc and doc["b"] == {"y": 2} and doc["c"] == "keep" and doc["d"] is None


def test_patch_system_fields_only_with_their_values(db):
    doc_id = insert(db, "t", {"a": 1})
    current = db.read(lambda tx: tx.get(doc_id))
    db.write(lambda tx: tx.shallow_merge(doc_id, {"_id": doc_id, "_creationTime": current["_creationTime"], "a": 2}))
    with pytest.raises(ConvexEngineError, match="_creationTime"):
        db.write(lambda tx: tx.shallow_merge(doc_id, {"_creationTime": 5.0}))
    assert db.read(lambda tx: tx.get(doc_id))["a"] == 2


def test_replace_keeps_system_fields_and_remove_deletes(db):
    doc_id = insert(db, "t", {"a": 1, "b": 2})
    db.write(lambda tx: tx.replace(doc_id, {"q": 1}))
    doc = db.read(lambda tx: tx.get(doc_id))
    assert set(doc) == {"_id", "_creationTime", "q"}
    removed, _ = db.write(lambda tx: tx.remove(doc_id))
    assert removed["q"] == 1
    assert db.read(lambda tx: tx.get(doc_id)) is None
    with pytest.raises(ConvexEngineError, match=f"Delete on nonexistent document ID {doc_id}"):
        db.write(lambda tx: tx.remove(doc_id))
    with pytest.raises(ConvexEngineError, match="Update on nonexistent document ID"):
        db.write(lambda tx: tx.shallow_merge(doc_id, {"a": 1}))


def test_get_errors_and_table_checks(db):
    user = insert(db, "users", {"name": "a"})
    insert(db, "posts", {"t": 1})
    with pytest.raises(ConvexEngineError, match="Invalid argument `id` for `db.get`"):
        db.read(lambda tx: tx.get("not-an-id"))
    with pytest.raises(ConvexEngineError, match=r'expected to be an Id<"posts">, got Id<"users"> instead\.'):
        db.read(lambda tx: tx.get(user, table="posts"))
    with pytest.raises(ConvexEngineError, match="User tables cannot be accessed with db.system."):
        db.read(lambda tx: tx.get(user, is_system=True))
    ghost = ids.encode_id(20000, bytes(16))
    assert db.read(lambda tx: tx.get(ghost)) is None


def test_system_tables_need_the_system_flag(db):
    with pytest.raises(ConvexEngineError, match="System tables"):
        db.write(lambda tx: tx.insert("_storage", {"sha256": "x"}))
    sid = db.write(lambda tx: tx.insert("_storage", {"sha256": "x", "size": 1.0}, system=True))[0]
    number, _ = ids.decode_id(sid)
    assert number < 10001
    with pytest.raises(ConvexEngineError, match="System tables can only be accessed with db.system."):
        db.read(lambda tx: tx.get(sid))
    assert db.read(lambda tx: tx.get(sid, is_system=True))["size"] == 1.0
    assert db.table_names() == [] and db.table_names(include_system=True) == ["_storage"]


def test_insert_rejects_bad_documents(db):
    with pytest.raises(ConvexEngineError, match="starts with an underscore"):
        insert(db, "t", {"_secret": 1})
    with pytest.raises(ConvexEngineError, match="system field"):
        insert(db, "t", {"_id": "x"})
    with pytest.raises(ConvexEngineError, match="too large"):
        insert(db, "t", {"big": "x" * (1 << 20)})
    nested = {}
    for _ in range(20):
        nested = {"n": nested}
    with pytest.raises(ConvexEngineError, match="nest"):
        insert(db, "t", nested)
    with pytest.raises(ConvexEngineError, match="Value must be an Object"):
        db.write(lambda tx: tx.insert("t", [1]))
    assert db.table_names() == []  # nothing committed, no table created


def test_queries_are_read_only(db):
    with pytest.raises(ConvexEngineError, match="read-only"):
        db.read(lambda tx: tx.insert("t", {}))


def test_count_and_normalize_id(db):
    a = insert(db, "a", {})
    insert(db, "a", {})
    b = insert(db, "b", {})

    def body(tx):
        tx.insert("a", {})
        tx.remove(a)
        return tx.count("a"), tx.count("missing")

    assert db.write(body)[0] == (2, 0)
    assert db.read(lambda tx: tx.count("a")) == 2
    assert db.read(lambda tx: tx.normalize_id("b", b)) == b
    assert db.read(lambda tx: tx.normalize_id("a", b)) is None
    assert db.read(lambda tx: tx.normalize_id("a", "garbage")) is None


# ---------------------------------------------------------------------------
# Indexes and queries


@pytest.fixture
def posts_db(db):
    schema = SchemaDefinition({
        "posts": TableDefinition(None, [IndexDefinition("by_author", ["author"]),
                                        IndexDefinition("by_author_and_n", ["author", "n"])]),
    })
    db.set_schema(schema)
    return db


def test_index_entries_are_maintained_with_each_write(posts_db):
    db = posts_db
    a = insert(db, "posts", {"author": "x", "n": 1.0})
    insert(db, "posts", {"author": "y", "n": 2.0})
    q = index_query("posts.by_author", [eq("author", "x")])
    assert [d["_id"] for d in db.read(lambda tx: tx.collect(q))] == [a]
    db.write(lambda tx: tx.shallow_merge(a, {"author": "y"}))
    assert db.read(lambda tx: tx.collect(q)) == []
    entries = db._writer.execute("SELECT COUNT(*) FROM index_entries").fetchone()[0]
    assert entries == 2 * 3  # by_creation_time + two user indexes per document
    db.write(lambda tx: tx.remove(a))
    assert db._writer.execute("SELECT COUNT(*) FROM index_entries").fetchone()[0] == 3


def test_failed_transaction_leaves_no_index_entries(posts_db):
    db = posts_db

    def body(tx):
        tx.insert("posts", {"author": "x"})
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        db.write(body)
    assert db._writer.execute("SELECT COUNT(*) FROM index_entries").fetchone()[0] == 0


def test_index_range_rules_and_messages(posts_db):
    db = posts_db
    insert(db, "posts", {"author": "x", "n": 1.0})
    run = lambda q: db.read(lambda tx: tx.collect(q))
    # Eq order does not matter; a prefix plus one bounded field works.
    assert len(run(index_query("posts.by_author_and_n", [eq("n", 1.0), eq("author", "x")]))) == 1
    bounded = [eq("author", "x"), {"type": "Gt", "fieldPath": "n", "value": 0.5},
               {"type": "Lte", "fieldPath": "n", "value": 1.0}]
    assert len(run(index_query("posts.by_author_and_n", bounded))) == 1
    with pytest.raises(ConvexEngineError, match="Index posts.by_nothing not found."):
        run(index_query("posts.by_nothing"))
    with pytest.raises(ConvexEngineError, match="doesn't index this field"):
        run(index_query("posts.by_author", [eq("title", "x")]))
    with pytest.raises(ConvexEngineError, match="didn't use the index fields in order"):
        run(index_query("posts.by_author_and_n", [eq("n", 1.0)]))
    with pytest.raises(ConvexEngineError, match="Already defined inequality bound"):
        run(index_query("posts.by_author", [eq("author", "x"), {"type": "Gt", "fieldPath": "author", "value": "a"}]))
    with pytest.raises(ConvexEngineError, match="can only be applied to a single index field"):
        run(index_query("posts.by_author_and_n", [{"type": "Gt", "fieldPath": "author", "value": "a"},
                                                   {"type": "Lt", "fieldPath": "n", "value": 3.0}]))
    # Missing fields index as undefined.
    insert(db, "posts", {"n": 5.0})
    missing = run(index_query("posts.by_author", [{"type": "Eq", "fieldPath": "author", "value": {"$undefined": None}}]))
    assert [d["n"] for d in missing] == [5.0]


def test_operators_apply_in_order(db):
    db.bulk_insert("t", [{"n": i} for i in range(10)])
    even = {"$eq": [{"$mod": [{"$field": "n"}, {"$literal": values.encode(2)}]}, {"$literal": values.encode(0)}]}
    got = db.read(lambda tx: tx.collect(scan("t", "desc", [{"filter": even}, {"limit": 3}])))
    assert [d["n"] for d in got] == [8, 6, 4]
    got = db.read(lambda tx: tx.collect(scan("t", None, [{"limit": 3}, {"filter": even}])))
    assert [d["n"] for d in got] == [0, 2]


def test_filter_errors(db):
    insert(db, "t", {"n": 1, "s": "x"})
    add = {"$eq": [{"$add": [{"$field": "n"}, {"$literal": 1.5}]}, {"$literal": 2.5}]}
    with pytest.raises(ConvexEngineError, match=r"Cannot add 1 \(type Int64\) and 1.5 \(type Float64\)"):
        db.read(lambda tx: tx.collect(scan("t", None, [{"filter": add}])))
    with pytest.raises(ConvexEngineError, match="as a Boolean"):
        db.read(lambda tx: tx.collect(scan("t", None, [{"filter": {"$field": "flag"}}])))
    overflow = {"$gt": [{"$mul": [{"$literal": values.encode(2**62)}, {"$literal": values.encode(4)}]}, {"$literal": 0}]}
    with pytest.raises(ConvexEngineError, match="out of range for Int64"):
        db.read(lambda tx: tx.collect(scan("t", None, [{"filter": overflow}])))
    div = {"$eq": [{"$div": [{"$field": "n"}, {"$literal": values.encode(0)}]}, {"$literal": 0}]}
    with pytest.raises(ConvexEngineError, match="Cannot divide 1 by zero"):
        db.read(lambda tx: tx.collect(scan("t", None, [{"filter": div}])))


def test_stream_lifecycle(db):
    db.bulk_insert("t", [{"n": i} for i in range(3)])
    tx = db.begin()
    try:
        qid = tx.query_stream(scan("t"))
        assert tx.query_stream_next(qid)[0]["n"] == 0
        assert tx.query_cleanup(qid) is True
        qid = tx.query_stream(scan("t", operators=[{"limit": 1}]))
        assert tx.query_stream_next(qid)[1] is False
        assert tx.query_stream_next(qid) == (None, True)
        assert tx.query_cleanup(qid) is False
        with pytest.raises(ConvexEngineError, match="in-progress query not found"):
            tx.query_stream_next(qid)
    finally:
        tx.abort()


def test_missing_table_queries_are_empty(db):
    assert db.read(lambda tx: tx.collect(scan("nothing"))) == []
    assert db.read(lambda tx: tx.collect(index_query("nothing.by_creation_time"))) == []
    page = db.read(lambda tx: tx.query_page(scan("nothing"), cursor=None, page_size=5))
    assert page["page"] == [] and page["isDone"] is True


def test_search_prefix_matches_last_term(db):
    db.set_schema(SchemaDefinition({"m": TableDefinition(None, [], [SearchIndexDefinition("s", "body", ["ch"])])}))
    for body, ch in [("hello world", "a"), ("hello there", "a"), ("world peace", "a"), ("hello wonder", "b")]:
        insert(db, "m", {"body": body, "ch": ch})
    q = {"source": {"type": "Search", "indexName": "m.s", "filters": [
        {"type": "Search", "fieldPath": "body", "value": "hello wo"}, eq("ch", "a")]}, "operators": []}
    assert [d["body"] for d in db.read(lambda tx: tx.collect(q))] == ["hello world"]


# ---------------------------------------------------------------------------
# Pagination


def test_paginate_through_all_pages_and_end_cursor(db):
    db.bulk_insert("t", [{"n": i} for i in range(25)])
    q = scan("t")
    pages, cursor = [], None
    while True:
        result = db.read(lambda tx: tx.query_page(q, cursor=cursor, page_size=10))
        pages.append([d["n"] for d in result["page"]])
        cursor = result["continueCursor"]
        if result["isDone"]:
            break
    assert pages == [list(range(10)), list(range(10, 20)), list(range(20, 25))]
    first = db.read(lambda tx: tx.query_page(q, cursor=None, page_size=10))
    insert(db, "t", {"n": 99})
    # With an end cursor, the page keeps its boundary and ignores pageSize.
    again = db.read(lambda tx: tx.query_page(q, cursor=None, end_cursor=first["continueCursor"], page_size=2))
    assert [d["n"] for d in again["page"]] == list(range(10))
    assert again["continueCursor"] == first["continueCursor"] and again["isDone"] is False


def test_page_exactly_full_then_empty_done(db):
    db.bulk_insert("t", [{"n": i} for i in range(4)])
    first = db.read(lambda tx: tx.query_page(scan("t"), cursor=None, page_size=4))
    assert len(first["page"]) == 4 and first["isDone"] is False
    last = db.read(lambda tx: tx.query_page(scan("t"), cursor=first["continueCursor"], page_size=4))
    assert last["page"] == [] and last["isDone"] is True


def test_cursor_of_another_query_is_invalid(db):
    db.bulk_insert("t", [{"n": i} for i in range(4)])
    first = db.read(lambda tx: tx.query_page(scan("t"), cursor=None, page_size=2))
    with pytest.raises(InvalidCursor) as info:
        db.read(lambda tx: tx.query_page(scan("t", "desc"), cursor=first["continueCursor"], page_size=2))
    assert isinstance(info.value, ConvexError)
    assert info.value.data == {"isConvexSystemError": True, "paginationError": "InvalidCursor"}
    assert str(info.value).startswith("InvalidCursor: Tried to run a query starting from a cursor")


def test_page_limits_and_split(db):
    db.bulk_insert("t", [{"n": i} for i in range(30)])
    odd = {"$eq": [{"$mod": [{"$field": "n"}, {"$literal": values.encode(2)}]}, {"$literal": values.encode(1)}]}
    result = db.read(lambda tx: tx.query_page(scan("t", operators=[{"filter": odd}]), cursor=None, page_size=100,
                                              maximum_rows_read=10))
    assert [d["n"] for d in result["page"]] == [1, 3, 5, 7, 9]
    assert result["pageStatus"] == "SplitRequired" and result["splitCursor"] and not result["isDone"]
    rest = db.read(lambda tx: tx.query_page(scan("t", operators=[{"filter": odd}]), cursor=result["continueCursor"],
                                            page_size=100))
    assert rest["page"][0]["n"] == 11
    with pytest.raises(ConvexEngineError, match="NoDocumentsForPagination"):
        db.read(lambda tx: tx.query_page(scan("t"), cursor=None, page_size=0))
    with pytest.raises(ConvexEngineError, match="PageSizeTooLarge"):
        db.read(lambda tx: tx.query_page(scan("t"), cursor=None, page_size=100_000))
    with pytest.raises(ConvexEngineError, match="InvalidPaginationLimit"):
        db.read(lambda tx: tx.query_page(scan("t"), cursor=None, page_size=5, maximum_rows_read=0))


# ---------------------------------------------------------------------------
# Schema and validation

USERS_SCHEMA = {
    "type": "object",
    "value": {
        "name": {"fieldType": {"type": "string"}, "optional": False},
        "age": {"fieldType": {"type": "number"}, "optional": True},
    },
}
POSTS_SCHEMA = {
    "type": "object",
    "value": {"authorId": {"fieldType": {"type": "id", "tableName": "users"}, "optional": False}},
}


def test_schema_validation_of_writes(db):
    db.set_schema(SchemaDefinition({"users": TableDefinition(USERS_SCHEMA), "posts": TableDefinition(POSTS_SCHEMA)}))
    prefix = 'Failed to insert or update a document in table "users" because it does not match the schema: '
    with pytest.raises(ConvexEngineError) as info:
        insert(db, "users", {"age": 1.0})
    assert str(info.value).startswith(prefix + "Object is missing the required field `name`.")
    with pytest.raises(ConvexEngineError, match="Object contains extra field `nick` that is not in the validator."):
        insert(db, "users", {"name": "a", "nick": "b"})
    user = insert(db, "users", {"name": "ada"})
    with pytest.raises(ConvexEngineError) as info:
        db.write(lambda tx: tx.shallow_merge(user, {"age": "old"}))
    assert str(info.value) == prefix + (
        'Value does not match validator.\nPath: .age\nValue: "old"\nValidator: v.float64()'
    )
    insert(db, "posts", {"authorId": user})
    with pytest.raises(ConvexEngineError, match=r'Path: .authorId\nValue: 12\nValidator: v.id\("users"\)'):
        insert(db, "posts", {"authorId": 12})
    post = insert(db, "posts", {"authorId": user})
    with pytest.raises(ConvexEngineError, match="which does not match the table name in validator"):
        insert(db, "posts", {"authorId": post})


def test_set_schema_backfills_drops_and_rejects_violations(db):
    a = insert(db, "users", {"name": "a"})
    insert(db, "users", {"name": "b"})
    db.set_schema(SchemaDefinition({"users": TableDefinition(None, [IndexDefinition("by_name", ["name"])])}))
    q = index_query("users.by_name", [eq("name", "a")])
    assert [d["_id"] for d in db.read(lambda tx: tx.collect(q))] == [a]
    assert db.index_list("users") == [{"name": "by_name", "fields": ["name"], "staged": False,
                                       "backfill": {"state": "done"}}]
    exported = json.loads(db.schema_json())
    assert exported["schemaValidation"] is True
    assert exported["tables"][0]["indexes"] == [{"indexDescriptor": "by_name", "fields": ["name"]}]
    assert exported["tables"][0]["documentType"] == {"type": "any"}
    bad = SchemaDefinition({"users": TableDefinition({"type": "object", "value": {
        "name": {"fieldType": {"type": "number"}, "optional": False}}})})
    with pytest.raises(ConvexEngineError, match="does not match the schema"):
        db.set_schema(bad)
    assert json.loads(db.schema_json()) == exported  # unchanged after the failed push
    db.set_schema(SchemaDefinition({"users": TableDefinition(None)}))
    assert db.index_list("users") == []
    with pytest.raises(ConvexEngineError, match="not found"):
        db.read(lambda tx: tx.collect(q))


def test_schema_survives_reopen(tmp_path):
    database = Database.open(str(tmp_path))
    database.set_schema(SchemaDefinition({"users": TableDefinition(USERS_SCHEMA, [IndexDefinition("by_name", ["name"])])}))
    insert(database, "users", {"name": "x"})
    database.close()
    database = Database.open(str(tmp_path))
    try:
        with pytest.raises(ConvexEngineError, match="missing the required field"):
            insert(database, "users", {})
        got = database.read(lambda tx: tx.collect(index_query("users.by_name", [eq("name", "x")])))
        assert len(got) == 1
    finally:
        database.close()


def test_validate_value_messages_and_kinds():
    record = {"type": "record", "keys": {"type": "string"}, "values": {"fieldType": {"type": "bigint"}, "optional": False}}
    validate_value(record, {"a": 1})
    with pytest.raises(ValidationError, match=r"Path: .values\(\)"):
        validate_value(record, {"a": 1.0})
    union = {"type": "union", "value": [{"type": "literal", "value": "a"}, {"type": "null"}]}
    validate_value(union, None)
    with pytest.raises(ValidationError, match=r'Validator: v.union\(v.literal\("a"\), v.null\(\)\)'):
        validate_value(union, "b")
    with pytest.raises(ValidationError, match=r"Path: \[1\]"):
        validate_value({"type": "array", "value": {"type": "boolean"}}, [True, 1.0], "")
    validate_value({"type": "any"}, {"x": [b"1"]})
    validate_value({"type": "bytes"}, b"1")


# ---------------------------------------------------------------------------
# Syscalls JSON transport


def test_syscalls_json_shapes(db):
    tx = db.begin(write=True)
    try:
        out = json.loads(syscalls.dispatch(tx, "1.0/insert", json.dumps(
            {"table": "t", "value": {"a": {"$integer": "AQAAAAAAAAA="}, "b": 1}})))
        doc_id = out["_id"]
        doc = json.loads(syscalls.dispatch(tx, "1.0/get", json.dumps({"id": doc_id, "isSystem": False, "version": "1"})))
        assert doc["a"] == {"$integer": "AQAAAAAAAAA="} and doc["_id"] == doc_id
        merged = json.loads(syscalls.dispatch(tx, "1.0/shallowMerge", json.dumps(
            {"id": doc_id, "value": {"a": {"$undefined": None}}, "table": "t"})))
        assert "a" not in merged
        qid = json.loads(syscalls.dispatch(tx, "1.0/queryStream", json.dumps({"query": scan("t"), "version": "1"})))
        assert json.loads(syscalls.dispatch(tx, "1.0/queryStreamNext", json.dumps(qid)))["done"] is False
        assert json.loads(syscalls.dispatch(tx, "1.0/queryStreamNext", json.dumps(qid))) == {"value": None, "done": True}
        assert json.loads(syscalls.dispatch(tx, "1.0/queryCleanup", json.dumps(qid))) is False
        page = json.loads(syscalls.dispatch(tx, "1.0/queryPage", json.dumps(
            {"query": scan("t"), "cursor": None, "endCursor": None, "pageSize": 10, "maximumRowsRead": None})))
        assert set(page) == {"page", "isDone", "continueCursor", "splitCursor", "pageStatus"} and page["isDone"]
        assert syscalls.dispatch(tx, "1.0/count", json.dumps({"table": "t"})) == "1.0"
        assert json.loads(syscalls.dispatch(tx, "1.0/db/normalizeId", json.dumps({"table": "t", "idString": doc_id}))) == {"id": doc_id}
        json.loads(syscalls.dispatch(tx, "1.0/replace", json.dumps({"id": doc_id, "value": {"q": 1}})))
        json.loads(syscalls.dispatch(tx, "1.0/remove", json.dumps({"id": doc_id})))
        with pytest.raises(ConvexEngineError, match="Unknown async operation 1.0/nope"):
            syscalls.dispatch(tx, "1.0/nope", "{}")
        tx.commit()
    finally:
        tx.abort()
    assert db.read(lambda t: t.count("t")) == 0


# ---------------------------------------------------------------------------
# Odds and ends


def test_undefined_fields_are_omitted_on_insert_and_replace(db):
    doc_id = insert(db, "t", {"a": 1, "b": UNDEFINED, "c": {"d": UNDEFINED, "e": 2}})
    assert db.read(lambda tx: tx.get(doc_id))["c"] == {"e": 2}
    assert "b" not in db.read(lambda tx: tx.get(doc_id))
    db.write(lambda tx: tx.replace(doc_id, {"x": UNDEFINED, "y": 1}))
    assert set(db.read(lambda tx: tx.get(doc_id))) == {"_id", "_creationTime", "y"}


def test_unchanged_schema_push_is_a_no_op(db):
    schema = SchemaDefinition({"users": TableDefinition(USERS_SCHEMA, [IndexDefinition("by_name", ["name"])])})
    first = db.set_schema(schema)
    insert(db, "users", {"name": "a"})
    ts = db.last_commit_ts
    assert db.set_schema(schema) == ts and db.last_commit_ts == ts > first


def test_maximum_bytes_read_splits(db):
    db.bulk_insert("t", [{"s": "x" * 1000} for _ in range(10)])
    result = db.read(lambda tx: tx.query_page(scan("t"), cursor=None, page_size=10, maximum_bytes_read=2500))
    assert len(result["page"]) == 3 and result["pageStatus"] == "SplitRequired"


def test_page_read_set_covers_only_the_scanned_rows(db):
    db.bulk_insert("t", [{"n": i} for i in range(10)])
    commits = []
    db.add_commit_listener(commits.append)
    tx = db.begin()
    page = tx.query_page(scan("t"), cursor=None, page_size=3)
    read_set = tx.read_set
    tx.abort()
    late = db.read(lambda t: t.collect(scan("t")))[-1]["_id"]
    db.write(lambda t: t.shallow_merge(late, {"n": 99}))  # after the page: no invalidation
    assert not read_set.intersects(commits[-1])
    db.write(lambda t: t.shallow_merge(page["page"][1]["_id"], {"n": 99}))
    assert read_set.intersects(commits[-1])


def test_define_system_table_with_index(db):
    db.write(lambda tx: tx.insert("_jobs", {"state": "pending", "at": 2.0}, system=True))
    db.define_system_table("_jobs", [IndexDefinition("by_state", ["state", "at"])])
    db.write(lambda tx: tx.insert("_jobs", {"state": "pending", "at": 1.0}, system=True))
    got = db.read(lambda tx: tx.collect(index_query("_jobs.by_state", [eq("state", "pending")])))
    assert [d["at"] for d in got] == [1.0, 2.0]
    db.set_schema(SchemaDefinition({"users": TableDefinition(None)}))  # user schema leaves it alone
    assert len(db.read(lambda tx: tx.collect(index_query("_jobs.by_state")))) == 2


def test_bulk_insert_validates_against_the_schema(db):
    db.set_schema(SchemaDefinition({"users": TableDefinition(USERS_SCHEMA)}))
    with pytest.raises(ConvexEngineError, match="missing the required field `name`"):
        db.bulk_insert("users", [{"name": "a"}, {"age": 1.0}])
    ids_ = db.bulk_insert("users", [{"name": "a"}, {"name": "b", "age": 2.0}])
    assert db.read(lambda tx: tx.count("users")) == 2 and len(ids_) == 2


def test_scan_inside_a_transaction_that_rewrote_many_documents(db):
    ids_ = db.bulk_insert("t", [{"n": i} for i in range(300)])

    def body(tx):
        for doc_id in ids_[:250]:
            tx.shallow_merge(doc_id, {"n": -1})
        tx.remove(ids_[260])
        tx.insert("t", {"n": 1000})
        asc = [d["n"] for d in tx.collect(scan("t"))]
        desc = [d["n"] for d in tx.collect(scan("t", "desc"))]
        return asc, desc

    asc, desc = db.write(body)[0]
    expected = [-1] * 250 + [n for n in range(250, 300) if n != 260] + [1000]
    assert asc == expected and desc == expected[::-1]


def test_bulk_insert_many_batches_and_all_or_nothing(posts_db):
    db = posts_db
    docs = [{"author": f"a{i % 13}", "n": float(i)} for i in range(12_000)]
    ids_ = db.bulk_insert("posts", docs, batch=5_000)
    assert len(ids_) == 12_000 and db.read(lambda tx: tx.count("posts")) == 12_000
    got = db.read(lambda tx: tx.collect(index_query("posts.by_author_and_n", [eq("author", "a3")])))
    assert [d["n"] for d in got] == [float(i) for i in range(3, 12_000, 13)]
    assert db.read(lambda tx: tx.get(ids_[-1]))["n"] == 11_999.0
    bad = ({"author": "x", "n": 1.0} if i != 7_000 else {"_bad": 1} for i in range(8_000))
    with pytest.raises(ConvexEngineError, match="underscore"):
        db.bulk_insert("posts", bad, batch=5_000)
    assert db.read(lambda tx: tx.count("posts")) == 12_000  # the first batch was rolled back too
    assert len(db.read(lambda tx: tx.collect(index_query("posts.by_author", [eq("author", "x")])))) == 0
    insert(db, "posts", {"author": "after"})  # the commit lock was released
    assert db.bulk_insert("posts", []) == []


def test_documents_stored_as_json_by_format_1_are_still_read(tmp_path):
    """Files written before the marshal format: JSON text rows without a size are read, updated
    and paged (with maximumBytesRead) like new ones."""
    import marshal
    import sqlite3

    from console.emulator.engine import keys
    db = Database.open(tmp_path)
    doc_id = db.write(lambda tx: tx.insert("notes", {"text": "old", "n": 3, "tags": ["a"]}))[0]
    db.close()
    conn = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
    conn.execute("ALTER TABLE documents DROP COLUMN size")
    (stored,) = conn.execute("SELECT json FROM documents").fetchone()
    doc = {"_id": doc_id, "_creationTime": marshal.loads(stored)["_creationTime"], "text": "old", "n": 3, "tags": ["a"]}
    conn.execute("UPDATE documents SET json=?", (keys.dumps_document(doc),))
    conn.close()
    db = Database.open(tmp_path)
    try:
        assert db.read(lambda tx: tx.get(doc_id)) == doc
        query = {"source": {"type": "FullTableScan", "tableName": "notes", "order": "asc"}, "operators": []}
        page = db.read(lambda tx: tx.query_page(query, cursor=None, page_size=10, maximum_bytes_read=10_000))
        assert page["page"] == [doc] and page["isDone"]
        db.write(lambda tx: tx.shallow_merge(doc_id, {"text": "new"}))
        assert db.read(lambda tx: tx.get(doc_id))["text"] == "new"
        assert isinstance(db._writer.execute("SELECT json FROM documents").fetchone()[0], bytes)
    finally:
        db.close()


def test_insert_then_patch_in_one_transaction_commits_the_final_index_keys(db):
    db.set_schema(SchemaDefinition({"tasks": TableDefinition(None, [IndexDefinition("by_state", ["state"])])}))

    def run(tx):
        doc_id = tx.insert("tasks", {"state": "new"})
        tx.shallow_merge(doc_id, {"state": "done"})
        page = tx.query_page(index_query("tasks.by_state", [eq("state", "done")]), cursor=None, page_size=10)
        page["page"][0]["state"] = "mutated by the caller"  # a copy: the pending write is unchanged
        return doc_id

    doc_id = db.write(run)[0]
    found = lambda state: db.read(lambda tx: tx.collect(index_query("tasks.by_state", [eq("state", state)])))
    assert [d["_id"] for d in found("done")] == [doc_id] and found("new") == []
    assert found("done")[0]["state"] == "done"
    assert db.read(lambda tx: tx.get(doc_id))["state"] == "done"


def test_the_wal_stays_bounded_under_many_small_commits(db):
    """Each commit releases its snapshot before COMMIT, so SQLite's automatic checkpoint
    completes and the WAL restarts (it grew by ~27 KB per commit when the snapshot was held)."""
    import os
    for i in range(600):
        insert(db, "events", {"n": float(i)})
    assert os.path.getsize(db.path + "-wal") < 8_000_000
    assert db.read(lambda tx: tx.count("events")) == 600


# ---------------------------------------------------------------------------
# Savepoints (nested ctx.run_mutation): rollback_to undoes only the writes after the mark


def _view(tx, tables=("posts",)):
    """Everything a function could observe of the transaction's writes."""
    view = {}
    for table in tables:
        view[table] = {
            "docs": tx.collect(scan(table)),
            "count": tx.count(table),
            "by_author": {a: [d["_id"] for d in tx.collect(index_query("posts.by_author", [eq("author", a)]))]
                          for a in ("x", "y")} if table == "posts" else None,
        }
    return view


def test_rollback_to_restores_the_exact_state_at_the_mark(posts_db):
    db = posts_db
    kept = insert(db, "posts", {"author": "x", "n": 1.0})
    gone = insert(db, "posts", {"author": "y", "n": 2.0})

    def run(tx):
        tx.shallow_merge(kept, {"n": 10.0})
        before = _view(tx, ("posts", "fresh"))
        mark = tx.savepoint()
        tx.insert("posts", {"author": "x", "n": 3.0})
        tx.shallow_merge(kept, {"author": "y", "n": 11.0})
        tx.replace(gone, {"author": "x"})
        tx.remove(gone)
        tx.insert("fresh", {"a": 1.0})  # a table created inside the savepoint
        assert _view(tx, ("posts", "fresh")) != before
        tx.rollback_to(mark)
        assert _view(tx, ("posts", "fresh")) == before
        assert tx.get(gone)["n"] == 2.0 and tx.get(kept)["n"] == 10.0

    db.write(run)
    assert "fresh" not in db.table_names() and "fresh" not in db.table_mapping().values()
    docs = db.read(lambda tx: tx.collect(scan("posts")))
    assert [(d["author"], d["n"]) for d in docs] == [("x", 10.0), ("y", 2.0)]
    assert db.read(lambda tx: tx.count("posts")) == 2
    assert db._writer.execute("SELECT COUNT(*) FROM index_entries").fetchone()[0] == 2 * 3


def test_nested_savepoints_and_commit_after_rollback(posts_db):
    db = posts_db
    published = []
    db.add_commit_listener(published.append)

    def run(tx):
        parent = tx.insert("posts", {"author": "x", "n": 1.0})
        outer = tx.savepoint()
        child = tx.insert("posts", {"author": "x", "n": 2.0})
        inner = tx.savepoint()
        grandchild = tx.insert("posts", {"author": "y", "n": 3.0})
        tx.shallow_merge(parent, {"n": 100.0})
        tx.rollback_to(inner)
        assert tx.get(grandchild) is None and tx.get(parent)["n"] == 1.0 and tx.get(child) is not None
        later = tx.savepoint()
        tx.remove(child)
        tx.rollback_to(outer)  # also undoes `later`'s writes and invalidates it and `inner`
        for stale in (inner, later):
            with pytest.raises(ConvexEngineError, match="no longer valid"):
                tx.rollback_to(stale)
        assert tx.get(child) is None and tx.count("posts") == 1
        tx.rollback_to(outer)  # the mark itself stays usable: nothing new to undo
        return parent

    parent, ts = db.write(run)
    assert [d["_id"] for d in db.read(lambda tx: tx.collect(scan("posts")))] == [parent]
    assert db.read(lambda tx: tx.get(parent))["n"] == 1.0
    commit = published[-1]
    assert commit.ts == ts and commit.tables == {"posts"}
    assert len(commit.writes) == 4 and all(w.old_key is None for w in commit.writes)  # one insert, 4 indexes


def test_rolling_back_everything_commits_nothing(posts_db):
    db = posts_db
    before = db.last_commit_ts

    def run(tx):
        mark = tx.savepoint()
        tx.insert("posts", {"author": "x"})
        tx.insert("other", {})
        tx.rollback_to(mark)
        assert not tx.has_writes

    db.write(run)
    assert db.last_commit_ts == before
    assert db.table_names() == ["posts"] and db.read(lambda tx: tx.count("posts")) == 0


def test_reads_made_after_a_mark_still_conflict(posts_db):
    db = posts_db
    doc_id = insert(db, "posts", {"author": "x", "n": 1.0})
    tx = db.begin(True)
    mark = tx.savepoint()
    tx.get(doc_id)
    tx.insert("posts", {"author": "y"})
    tx.rollback_to(mark)
    tx.insert("posts", {"author": "z"})
    db.write(lambda other: other.shallow_merge(doc_id, {"n": 2.0}))
    with pytest.raises(ConflictError):
        tx.commit()


def test_savepoint_errors(posts_db):
    db = posts_db
    tx = db.begin(True)
    other = db.begin(True)
    try:
        with pytest.raises(ConvexEngineError, match="not a savepoint of this transaction"):
            tx.rollback_to(other.savepoint())
        with pytest.raises(ConvexEngineError, match="not a savepoint"):
            tx.rollback_to(object())
        mark = tx.savepoint()
        tx.insert("posts", {"author": "x"})
        tx.release(mark)  # keeps the writes
        assert tx.count("posts") == 1
        with pytest.raises(ConvexEngineError, match="no longer valid"):
            tx.rollback_to(mark)
    finally:
        tx.abort()
        other.abort()
    reader = db.begin(False)
    try:
        with pytest.raises(ConvexEngineError, match="read-only"):
            reader.savepoint()
    finally:
        reader.abort()


_OPS = st.lists(st.one_of(
    st.tuples(st.just("insert"), st.sampled_from(["posts", "extra"]), st.sampled_from(["x", "y"])),
    st.tuples(st.just("patch"), st.integers(0, 50), st.sampled_from(["x", "y"])),
    st.tuples(st.just("replace"), st.integers(0, 50), st.sampled_from(["x", "y"])),
    st.tuples(st.just("delete"), st.integers(0, 50)),
    st.tuples(st.just("savepoint")),
    st.tuples(st.just("rollback"), st.integers(0, 50)),
    st.tuples(st.just("release"), st.integers(0, 50)),
), max_size=30)


@given(ops=_OPS)
@settings(max_examples=60, deadline=None)
def test_savepoints_match_a_reference_model(ops):
    db = Database.open(None)
    try:
        db.set_schema(SchemaDefinition({"posts": TableDefinition(None, [IndexDefinition("by_author", ["author"])])}))
        seed = [insert(db, "posts", {"author": "x", "n": float(i)}) for i in range(2)]
        model = {i: ("posts", db.read(lambda tx, i=i: tx.get(i))) for i in seed}
        model_tables = {"posts"}
        stack = []  # (mark, model copy, tables copy)

        def run(tx):
            nonlocal model, model_tables
            for n, op in enumerate(ops):
                live = sorted(model)
                if op[0] == "insert":
                    doc_id = tx.insert(op[1], {"author": op[2], "n": float(n)})
                    model[doc_id] = (op[1], tx.get(doc_id))
                    model_tables.add(op[1])
                elif op[0] in ("patch", "replace", "delete") and live:
                    doc_id = live[op[1] % len(live)]
                    if op[0] == "delete":
                        tx.remove(doc_id)
                        del model[doc_id]
                    else:
                        change = tx.shallow_merge if op[0] == "patch" else tx.replace
                        model[doc_id] = (model[doc_id][0], change(doc_id, {"author": op[2], "n": -float(n)}))
                elif op[0] == "savepoint":
                    stack.append((tx.savepoint(), dict(model), set(model_tables)))
                elif op[0] in ("rollback", "release") and stack:
                    depth = op[1] % len(stack)
                    mark, saved, saved_tables = stack[depth]
                    if op[0] == "rollback":
                        tx.rollback_to(mark)
                        model, model_tables = dict(saved), set(saved_tables)
                        del stack[depth + 1:]
                    else:
                        tx.release(mark)
                        del stack[depth:]
                check(tx)

        def check(tx):
            for table in ("posts", "extra"):
                expected = sorted((d for t, d in model.values() if t == table), key=lambda d: d["_creationTime"])
                assert tx.collect(scan(table)) == expected
                assert tx.count(table) == len(expected)
                for author in ("x", "y"):
                    if table == "posts":
                        found = tx.collect(index_query("posts.by_author", [eq("author", author)]))
                        assert found == [d for d in expected if d["author"] == author]
            for doc_id, (_, doc) in model.items():
                assert tx.get(doc_id) == doc

        db.write(run)
        db.read(check)
        assert ("extra" in db.table_names()) == ("extra" in model_tables)
    finally:
        db.close()
