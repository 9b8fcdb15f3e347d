"""Property tests of the engine: key order, index ranges, filters, pagination under concurrency."""

import math
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console import values
from console.emulator.engine import Database, IndexDefinition, SchemaDefinition, TableDefinition
from console.emulator.engine.filters import EvalError, compile_filter
from console.emulator.engine.keys import encode_value
from console.values import UNDEFINED

field_names = st.text(alphabet="abcdxyz_ -", min_size=0, max_size=4).filter(lambda s: not s.startswith(("$", "_")))
scalars = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=6),
    st.binary(max_size=6),
)
convex_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(field_names, inner, max_size=4)),
    max_leaves=12,
)


def sign(n: int) -> int:
    return (n > 0) - (n < 0)


@settings(max_examples=400, deadline=None)
@given(convex_values | st.just(UNDEFINED), convex_values | st.just(UNDEFINED))
def test_key_bytes_order_matches_compare(a, b):
    ka, kb = encode_value(a), encode_value(b)
    assert sign((ka > kb) - (ka < kb)) == values.compare(a, b)


@settings(max_examples=200, deadline=None)
@given(st.lists(convex_values, min_size=2, max_size=2), st.lists(convex_values, min_size=2, max_size=2))
def test_compound_keys_order_lexicographically(a, b):
    ka, kb = b"".join(map(encode_value, a)), b"".join(map(encode_value, b))
    expected = values.compare(a[0], b[0]) or values.compare(a[1], b[1])
    assert sign((ka > kb) - (ka < kb)) == expected


# ---------------------------------------------------------------------------
# Index ranges == brute force

small_values = st.one_of(
    st.none(),
    st.integers(min_value=-3, max_value=3),
    st.sampled_from([-1.5, 0.0, 2.0, math.inf]),
    st.booleans(),
    st.sampled_from(["", "a", "b", "ab"]),
)
maybe_missing = st.one_of(st.just(UNDEFINED), small_values)


@pytest.fixture(scope="module")
def ranged_db():
    db = Database.open(None)
    db.set_schema(SchemaDefinition({"t": TableDefinition(None, [IndexDefinition("by_ab", ["a", "b"])])}))
    yield db
    db.close()


def make_doc(a, b):
    doc = {}
    if a is not UNDEFINED:
        doc["a"] = a
    if b is not UNDEFINED:
        doc["b"] = b
    return doc


def field(doc, name):
    return doc.get(name, UNDEFINED)


def brute_force(docs, eq_a, lower, upper, desc):
    def keep(d):
        if eq_a is not None and values.compare(field(d, "a"), eq_a[0]) != 0:
            return False
        name = "b" if eq_a is not None else "a"
        if lower and values.compare(field(d, name), lower[1]) < (0 if lower[0] == "Gte" else 1):
            return False
        if upper and values.compare(field(d, name), upper[1]) > (0 if upper[0] == "Lte" else -1):
            return False
        return True

    key = lambda d: (values.sort_key(field(d, "a")), values.sort_key(field(d, "b")), d["_creationTime"], d["_id"])
    return [d["_id"] for d in sorted(filter(keep, docs), key=key, reverse=desc)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    docs=st.lists(st.tuples(maybe_missing, maybe_missing), max_size=25),
    eq_a=st.one_of(st.none(), st.tuples(maybe_missing)),
    lower=st.one_of(st.none(), st.tuples(st.sampled_from(["Gt", "Gte"]), maybe_missing)),
    upper=st.one_of(st.none(), st.tuples(st.sampled_from(["Lt", "Lte"]), maybe_missing)),
    desc=st.booleans(),
    in_tx=st.booleans(),
)
def test_index_range_equals_brute_force(ranged_db, docs, eq_a, lower, upper, desc, in_tx):
    db = ranged_db

    def body(tx):
        for doc in tx.collect({"source": {"type": "FullTableScan", "tableName": "t", "order": None}, "operators": []}):
            tx.remove(doc["_id"])
        for a, b in docs:
            tx.insert("t", make_doc(a, b))

    def query(tx):
        name = "b" if eq_a is not None else "a"
        rng = [] if eq_a is None else [{"type": "Eq", "fieldPath": "a", "value": values.encode(eq_a[0])}]
        for bound in (lower, upper):
            if bound:
                rng.append({"type": bound[0], "fieldPath": name, "value": values.encode(bound[1])})
        q = {"source": {"type": "IndexRange", "indexName": "t.by_ab", "range": rng, "order": "desc" if desc else "asc"},
             "operators": []}
        stored = tx.collect({"source": {"type": "FullTableScan", "tableName": "t", "order": None}, "operators": []})
        return [d["_id"] for d in tx.collect(q)], stored

    if in_tx:  # pending writes merged into the scan
        def both(tx):
            body(tx)
            result = query(tx)
            return result
        tx = db.begin(True)
        try:
            got, stored = both(tx)
        finally:
            tx.abort()
    else:
        db.write(body)
        got, stored = db.read(query)
    assert len(stored) == len(docs)
    assert got == brute_force(stored, eq_a, lower, upper, desc)


# ---------------------------------------------------------------------------
# Filters == a reference evaluator

def ref_eval(expr, doc):
    (op, arg), = expr.items()
    if op == "$field":
        return doc.get(arg, UNDEFINED)
    if op == "$literal":
        return values.decode(arg, allow_undefined=True)
    if op in ("$eq", "$neq", "$lt", "$lte", "$gt", "$gte"):
        c = values.compare(ref_eval(arg[0], doc), ref_eval(arg[1], doc))
        return {"$eq": c == 0, "$neq": c != 0, "$lt": c < 0, "$lte": c <= 0, "$gt": c > 0, "$gte": c >= 0}[op]
    if op in ("$add", "$sub", "$mul"):
        l, r = ref_eval(arg[0], doc), ref_eval(arg[1], doc)
        ints = type(l) is int and type(r) is int
        if not (ints or (type(l) is float and type(r) is float)):
            raise EvalError("type")
        out = {"$add": l + r, "$sub": l - r, "$mul": l * r}[op]
        if ints and not -(2**63) <= out < 2**63:
            raise EvalError("range")
        return out
    if op == "$and":
        for a in arg:
            v = ref_eval(a, doc)
            if type(v) is not bool:
                raise EvalError("bool")
            if not v:
                return False
        return True
    if op == "$or":
        for a in arg:
            v = ref_eval(a, doc)
            if type(v) is not bool:
                raise EvalError("bool")
            if v:
                return True
        return False
    if op == "$not":
        v = ref_eval(arg, doc)
        if type(v) is not bool:
            raise EvalError("bool")
        return not v
    raise AssertionError(op)


leaf_exprs = st.one_of(
    st.sampled_from(["x", "y", "missing"]).map(lambda f: {"$field": f}),
    small_values.map(lambda v: {"$literal": values.encode(v)}),
    st.just({"$literal": {"$undefined": None}}),
)


def exprs():
    return st.recursive(
        leaf_exprs,
        lambda inner: st.one_of(
            st.tuples(st.sampled_from(["$eq", "$neq", "$lt", "$lte", "$gt", "$gte", "$add", "$sub", "$mul"]), inner, inner)
            .map(lambda t: {t[0]: [t[1], t[2]]}),
            st.tuples(st.sampled_from(["$and", "$or"]), st.lists(inner, max_size=3)).map(lambda t: {t[0]: t[1]}),
            inner.map(lambda e: {"$not": e}),
        ),
        max_leaves=8,
    )


@settings(max_examples=500, deadline=None)
@given(exprs(), st.dictionaries(st.sampled_from(["x", "y"]), small_values))
def test_filter_matches_reference(expr, doc):
    try:
        expected = ref_eval(expr, doc)
        if type(expected) is not bool:
            raise EvalError("final")
    except EvalError:
        with pytest.raises(EvalError):
            compile_filter(expr)(doc)
        return
    assert compile_filter(expr)(doc) is expected


# ---------------------------------------------------------------------------
# Pagination under concurrent inserts and deletes

@settings(max_examples=8, deadline=None)
@given(n=st.integers(min_value=0, max_value=120), page=st.integers(min_value=1, max_value=17),
       desc=st.booleans(), use_index=st.booleans())
def test_pagination_under_concurrent_writes(n, page, desc, use_index):
    db = Database.open(None)
    try:
        db.set_schema(SchemaDefinition({"t": TableDefinition(None, [IndexDefinition("by_k", ["k"])])}))
        ids = db.bulk_insert("t", [{"k": i % 7, "victim": i % 5 == 0} for i in range(n)])
        victims = [i for k, i in enumerate(ids) if k % 5 == 0]
        stop = threading.Event()
        deleted = set()
        churned = threading.Condition()
        rounds = [0]

        def churn():
            j = 0
            while not stop.is_set():
                db.write(lambda tx: tx.insert("t", {"k": j % 7, "victim": False}))
                if victims:
                    victim = victims.pop()
                    db.write(lambda tx: tx.remove(victim))
                    deleted.add(victim)
                j += 1
                with churned:
                    rounds[0] += 1
                    churned.notify_all()

        def wait_for_churn():
            with churned:
                target = rounds[0] + 1
                assert churned.wait_for(lambda: rounds[0] >= target, timeout=10)

        thread = threading.Thread(target=churn)
        thread.start()
        if use_index:
            source = {"type": "IndexRange", "indexName": "t.by_k", "range": [], "order": "desc" if desc else "asc"}
        else:
            source = {"type": "FullTableScan", "tableName": "t", "order": "desc" if desc else "asc"}
        q = {"source": source, "operators": []}
        seen, cursor = [], None
        try:
            for _ in range(1000):
                result = db.read(lambda tx: tx.query_page(q, cursor=cursor, page_size=page))
                seen.extend(d["_id"] for d in result["page"])
                cursor = result["continueCursor"]
                if result["isDone"]:
                    break
                wait_for_churn()  # at least one insert+delete lands between any two pages
        finally:
            stop.set()
            thread.join()
        assert len(seen) == len(set(seen))
        survivors = set(ids) - deleted
        assert survivors <= set(seen)
    finally:
        db.close()


# ---------------------------------------------------------------------------
# Read sets are sound: a commit that changes a query's result intersects its read set

@settings(max_examples=60, deadline=None)
@given(
    docs=st.lists(st.tuples(maybe_missing, maybe_missing), min_size=1, max_size=12),
    eq_a=st.one_of(st.none(), st.tuples(maybe_missing)),
    lower=st.one_of(st.none(), st.tuples(st.sampled_from(["Gt", "Gte"]), maybe_missing)),
    desc=st.booleans(),
    limit=st.one_of(st.none(), st.integers(min_value=0, max_value=4)),
    action=st.sampled_from(["insert", "patch", "delete"]),
    target=st.integers(min_value=0, max_value=11),
    new=st.tuples(maybe_missing, maybe_missing),
)
def test_result_changes_always_intersect_the_read_set(docs, eq_a, lower, desc, limit, action, target, new):
    db = Database.open(None)
    try:
        db.set_schema(SchemaDefinition({"t": TableDefinition(None, [IndexDefinition("by_ab", ["a", "b"])])}))
        ids = db.bulk_insert("t", [make_doc(a, b) for a, b in docs])
        rng = [] if eq_a is None else [{"type": "Eq", "fieldPath": "a", "value": values.encode(eq_a[0])}]
        if lower:
            rng.append({"type": lower[0], "fieldPath": "b" if eq_a else "a", "value": values.encode(lower[1])})
        q = {"source": {"type": "IndexRange", "indexName": "t.by_ab", "range": rng, "order": "desc" if desc else "asc"},
             "operators": [] if limit is None else [{"limit": limit}]}
        commits = []
        db.add_commit_listener(commits.append)
        tx = db.begin()
        before = tx.collect(q)
        read_set = tx.read_set
        tx.abort()
        doc_id = ids[target % len(ids)]
        if action == "insert":
            db.write(lambda t: t.insert("t", make_doc(*new)))
        elif action == "patch":
            db.write(lambda t: t.replace(doc_id, make_doc(*new)))
        else:
            db.write(lambda t: t.remove(doc_id))
        after = db.read(lambda t: t.collect(q))
        if before != after:
            assert read_set.intersects(commits[-1])
    finally:
        db.close()


# ---------------------------------------------------------------------------
# Stored document format (marshal) == the JSON format it replaced; fast checks == values' checks

any_field_names = st.text(max_size=5) | st.sampled_from(["_id", "_creationTime", "_x", "$a", "a" * 1025])
any_scalars = scalars | st.integers() | st.text(alphabet="a\ud800é", max_size=3)
loose_values = st.recursive(
    any_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(any_field_names, inner, max_size=3)),
    max_leaves=10,
)


def _same(a, b) -> bool:
    """Equal values, with the same types, field order and NaN/-0.0 bits."""
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float):
        return type(b) is float and (math.isnan(a) and math.isnan(b) or (a == b and math.copysign(1, a) == math.copysign(1, b)))
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(field_names, convex_values, max_size=6))
def test_stored_documents_read_back_as_the_json_format_did(fields):
    import json

    from console.emulator.engine import keys, store
    doc = {"_id": "k57a", "_creationTime": 1.5, **fields}
    from_json = values.decode(json.loads(keys.dumps_document(doc)))
    stored = store.encode_document(doc)
    assert isinstance(stored, bytes)
    assert _same(store.decode_document(stored), from_json)
    assert _same(store.decode_document(keys.dumps_document(doc)), from_json)  # format-1 rows
    assert store.document_size(doc) == values.value_size(doc)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(any_field_names, loose_values, max_size=5))
def test_check_document_matches_values_checks(doc):
    from console.emulator.engine import store
    try:
        values.check_document_fields(doc)
        expected = values.value_size(doc)
    except ValueError as error:
        expected = str(error)
    try:
        got = store.check_document(doc)
    except ValueError as error:
        got = str(error)
    assert got == expected
