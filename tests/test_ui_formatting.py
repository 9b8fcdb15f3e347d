"""Pure parts of the UI: value rendering, the editable JSON-ish format, schema source, paging."""

from __future__ import annotations

import math

from hypothesis import given, settings, strategies as st

from console import ids, values
from screens.formatting import (
    compact, parse_filter_value, parse_jsonish, pretty, table_source, to_jsonish, validator_source,
)
from screens.paging import Pager, document_fields
from screens.query import FilterClause, QuerySpec

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=values.INT64_MIN, max_value=values.INT64_MAX),
    st.floats(allow_nan=False), st.text(max_size=20), st.binary(max_size=20),
)
field_names = st.text(alphabet=st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8)
convex_values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(field_names, inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(convex_values)
def test_jsonish_round_trips_every_value(value):
    text = to_jsonish(value)
    back = parse_jsonish(text)
    assert values.compare(back, value) == 0
    assert type(back) is type(value)


def test_jsonish_int64_and_floats_are_distinct():
    assert to_jsonish({"a": 5, "b": 5.0}, indent=None) == '{"a": 5n, "b": 5.0}'
    assert parse_jsonish('{"n": 12n, "f": 12, "s": "12n"}') == {"n": 12, "f": 12.0, "s": "12n"}
    assert isinstance(parse_jsonish("12"), float)


def test_jsonish_reports_errors_readably():
    for bad, needle in (("{", "Invalid JSON"), ('{"$x": 1}', "reserved"), ("99999999999999999999n", "int64")):
        try:
            parse_jsonish(bad)
        except ValueError as error:
            assert needle in str(error)
        else:
            raise AssertionError(f"{bad!r} parsed")


def test_filter_value_bare_word_is_a_string():
    assert parse_filter_value("hello") == "hello"
    assert parse_filter_value('"42"') == "42"
    assert parse_filter_value("42") == 42.0
    assert parse_filter_value("42n") == 42
    assert parse_filter_value("true") is True


def test_compact_shortens_ids_and_marks_types():
    doc_id = ids.encode_id(10001, bytes(range(16)))
    assert compact(doc_id) == f"{doc_id[:6]}…{doc_id[-4:]}"
    assert compact(7) == "7n" and compact(7.0) == "7" and compact(7.5) == "7.5"
    assert compact(b"abc") == "bytes(3)"
    assert compact(math.nan) == "NaN"
    assert compact("x" * 100).endswith("…") and len(compact("x" * 100)) == 40


def test_pretty_marks_ids_with_their_table():
    doc_id = ids.encode_id(10001, bytes(range(16)))
    text = pretty({"author": doc_id, "n": 3}, table_of_id=lambda s: "users").plain
    assert 'Id<"users">' in text and "3n" in text


def test_schema_rendered_like_schema_ts():
    table = {
        "tableName": "posts",
        "indexes": [{"indexDescriptor": "by_author", "fields": ["authorId", "_creationTime"]}],
        "searchIndexes": [], "vectorIndexes": [],
        "documentType": {"type": "object", "value": {
            "title": {"fieldType": {"type": "string"}, "optional": False},
            "authorId": {"fieldType": {"type": "id", "tableName": "users"}, "optional": False},
            "views": {"fieldType": {"type": "bigint"}, "optional": True},
            "tags": {"fieldType": {"type": "array", "value": {"type": "string"}}, "optional": False},
            "status": {"fieldType": {"type": "union", "value": [
                {"type": "literal", "value": "draft"}, {"type": "literal", "value": "live"}]}, "optional": False},
        }},
    }
    source = table_source(table)
    assert source.startswith("defineTable({\n  title: v.string(),\n  authorId: v.id(\"users\"),")
    assert "views: v.optional(v.int64())," in source
    assert 'status: v.union(v.literal("draft"), v.literal("live")),' in source
    assert source.endswith('.index("by_author", ["authorId", "_creationTime"])')
    assert validator_source({"type": "any"}) == "v.any()"


def _docs(start, count):
    return [{"_id": f"id{n}", "_creationTime": float(n), "n": float(n)} for n in range(start, start + count)]


def test_pager_forward_back_and_last():
    pager = Pager(order="asc", page_size=100)
    first = pager.restart("start")
    assert first.cursor is None and first.order == "asc"
    assert pager.accept(first, _docs(0, 100), "c1", False)
    assert pager.describe(250, False) == "Showing 1–100 of 250"
    second = pager.next()
    assert second.cursor == "c1" and second.position == 1
    pager.accept(second, _docs(100, 100), "c2", False)
    assert pager.describe(250, False) == "Showing 101–200 of 250"
    back = pager.previous()
    assert back.cursor is None and back.position == 0
    pager.accept(back, _docs(0, 100), "c1", False)
    assert pager.window(250) == (1, 100) and len(pager.stack) == 1
    last = pager.restart("end")
    assert last.order == "desc"
    pager.accept(last, list(reversed(_docs(150, 100))), "d1", False)
    assert pager.docs[0]["_id"] == "id150"  # shown in the view's order
    assert pager.describe(250, False) == "Showing 151–250 of 250"
    assert pager.next() is None  # already at the end
    towards_start = pager.previous()
    assert towards_start.cursor == "d1" and towards_start.order == "desc"
    pager.accept(towards_start, list(reversed(_docs(50, 100))), "d2", False)
    assert pager.describe(250, False) == "Showing 51–150 of 250"


def test_pager_ignores_stale_pages():
    pager = Pager()
    old = pager.restart()
    new = pager.restart()
    assert not pager.accept(old, _docs(0, 5), None, True)
    assert pager.accept(new, _docs(0, 5), None, True)


def test_columns_start_with_system_fields():
    assert document_fields([{"b": 1, "_id": "x", "_creationTime": 1.0}, {"a": 2}]) == ["_id", "_creationTime", "b", "a"]


def test_query_spec_state_round_trip():
    spec = QuerySpec((FilterClause("n", "gte", 3), FilterClause("s", "type", "string")), "by_n", ("n",), "desc")
    assert QuerySpec.from_state(spec.to_state()) == spec
    assert QuerySpec.from_state({"clauses": [{"op": "nope"}]}) == QuerySpec()
    index = spec.index_filter().to_json()
    assert index["name"] == "by_n" and index["clauses"][0]["enabled"] is False
