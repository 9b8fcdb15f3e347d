"""console/validator_tools.py: readable types, skeletons, local validation, the JSON5-ish parser."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console import ids, values
from console.validator_tools import (
    ArgsSyntaxError,
    ArgsValidationError,
    flat_fields,
    format_value,
    is_id_placeholder,
    pagination_field,
    parse_args,
    skeleton,
    type_text,
    validate,
    validation_error,
)

TABLES = {"posts": 10001, "users": 10002, "_storage": 7}
TABLE_OF = {number: name for name, number in TABLES.items()}


def lookup(number: int) -> str | None:
    return TABLE_OF.get(number)


def make_id(table: str, seed: int = 0) -> str:
    return ids.encode_id(TABLES[table], bytes([seed % 256]) * 14 + b"\x00\x01")


def obj(**fields) -> dict:
    out = {}
    for name, spec in fields.items():
        optional = isinstance(spec, tuple)
        out[name] = {"fieldType": spec[0] if optional else spec, "optional": optional}
    return {"type": "object", "value": out}


S = {"type": "string"}
N = {"type": "number"}
I = {"type": "bigint"}
NULL = {"type": "null"}


def union(*members):
    return {"type": "union", "value": list(members)}


def lit(value):
    return {"type": "literal", "value": values.encode(value)}


PAGINATED = obj(paginationOpts=obj(numItems=N, cursor=union(S, NULL), endCursor=(union(S, NULL),)), author=(S,))


# ---------------------------------------------------------------------------
# Readable types


def test_type_text_reads_like_typescript():
    assert type_text(obj(id={"type": "id", "tableName": "posts"})) == '{ id: Id<"posts"> }'
    assert type_text(union(S, NULL)) == "string | null"
    assert type_text({"type": "array", "value": union(S, N)}) == "(string | number)[]"
    assert type_text({"type": "record", "keys": S, "values": {"fieldType": I, "optional": False}}) == "Record<string, bigint>"
    assert type_text(obj(kind=lit("a"), n=(lit(3),), b={"type": "bytes"})) == '{ kind: "a"; n?: 3n; b: ArrayBuffer }'
    assert type_text(None) == "any"
    assert type_text(obj(**{"with space": S})) == '{ "with space": string }'


def test_type_text_breaks_wide_objects_over_lines():
    wide = obj(**{f"field{i}": union(S, NULL) for i in range(8)})
    text = type_text(wide, width=60)
    assert text.startswith("{\n  field0: string | null;\n")
    assert text.endswith("\n}")
    assert "\n" not in type_text(wide, width=10_000)


# ---------------------------------------------------------------------------
# Skeletons


def test_skeleton_has_required_fields_and_placeholders():
    validator = obj(title=S, views=N, big=I, ok={"type": "boolean"}, tag=(S,), author={"type": "id", "tableName": "users"},
                    mode=union(lit("draft"), lit("live")), maybe=union(S, NULL), tags={"type": "array", "value": S})
    value = skeleton(validator)
    assert value == {"title": "", "views": 0.0, "big": 0, "ok": False, "author": "<Id<users>>", "mode": "draft",
                     "maybe": None, "tags": []}
    assert isinstance(value["views"], float) and isinstance(value["big"], int)
    assert is_id_placeholder(value["author"])
    error = validation_error(validator, value, table_of_id=lookup)
    assert error is not None and error.path == ".author" and "replace the placeholder" in error.message
    assert "tag" in skeleton(validator, include_optional=True)


def test_skeleton_for_pagination_opts_is_a_first_page():
    assert pagination_field(PAGINATED) == "paginationOpts"
    assert skeleton(PAGINATED) == {"paginationOpts": {"numItems": 10.0, "cursor": None}}
    validate(PAGINATED, skeleton(PAGINATED))
    assert pagination_field(obj(limit=(N,))) is None


def test_flat_fields_for_the_form_view():
    assert flat_fields(obj(a=S, b=(N,), c=union(S, NULL))) == [("a", S, False), ("b", N, True), ("c", union(S, NULL), False)]
    assert flat_fields(obj(a={"type": "array", "value": S})) is None
    assert flat_fields(S) is None


# ---------------------------------------------------------------------------
# Local validation: the error at the offending path


@pytest.mark.parametrize(
    ("validator", "value", "path", "fragment"),
    [
        (obj(name=S), {"name": 12}, ".name", "expected string, got 12n (bigint)"),
        (obj(n=I), {"n": 5.0}, ".n", "written 5n"),
        (obj(n=N), {"n": 5}, ".n", "written 5, without n"),
        (obj(name=S), {}, ".name", "missing required field `name`"),
        (obj(name=S), {"name": "a", "extra": 1.0}, ".extra", "unexpected field `extra`"),
        (obj(tags={"type": "array", "value": S}), {"tags": ["a", "b", 3.0]}, ".tags[2]", "expected string"),
        (obj(a=obj(b=obj(c=N))), {"a": {"b": {"c": "x"}}}, ".a.b.c", "expected number"),
        (obj(p={"type": "id", "tableName": "posts"}), {"p": "nope"}, ".p", "not a document id"),
        (obj(p={"type": "id", "tableName": "posts"}), {"p": make_id("users")}, ".p", 'from table "users"'),
        (union(obj(kind=lit("a"), x=N), obj(kind=lit("b"), y=S)), {"kind": "b", "y": 1.0}, ".y", "expected string"),
        (lit("draft"), "live", "", 'expected "draft"'),
        (union(S, NULL), 3.0, "", "expected string | null"),
        ({"type": "record", "keys": S, "values": {"fieldType": N}}, {"a": "x"}, ".a", "expected number"),
    ],
)
def test_validation_errors_name_the_path(validator, value, path, fragment):
    with pytest.raises(ArgsValidationError) as caught:
        validate(validator, value, table_of_id=lookup)
    assert caught.value.path == path
    assert fragment in caught.value.message
    assert str(caught.value).startswith(path or "args")


def test_valid_values_pass():
    validate(obj(p={"type": "id", "tableName": "posts"}, t=(S,)), {"p": make_id("posts")}, table_of_id=lookup)
    validate(obj(s={"type": "id", "tableName": "_storage"}), {"s": make_id("_storage")}, table_of_id=lookup)
    validate({"type": "any"}, {"x": [1, b"a", None]})
    validate(lit(3), 3)
    with pytest.raises(ArgsValidationError):
        validate(lit(3), 3.0)  # a bigint literal is not the number 3


def test_invalid_convex_values_are_refused():
    with pytest.raises(ArgsValidationError, match="reserved"):
        validate({"type": "any"}, {"$bad": 1.0})


# ---------------------------------------------------------------------------
# Parser


def test_parser_accepts_json5_comforts():
    text = """{
      // a comment
      title: 'it\\'s', "n": 12n, neg: -3n, hex: 0x10, /* block */ f: .5, tags: ['a', "b",],
      big: {"$integer": "AQAAAAAAAAA="}, data: {"$bytes": "AQI="}, inf: -Infinity,
    }"""
    assert parse_args(text) == {"title": "it's", "n": 12, "neg": -3, "hex": 16.0, "f": 0.5, "tags": ["a", "b"],
                                "big": 1, "data": b"\x01\x02", "inf": -math.inf}
    assert isinstance(parse_args("{n: 1}")["n"], float)
    assert parse_args("") == {} and parse_args("  // nothing\n") == {}


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("{a: }", 1, 5, "expected a value"),
        ("{a 1}", 1, 4, "expected `:` after the key `a`"),
        ("[1, 2", 1, 1, "never closed"),
        ("{\n  name: alice\n}", 2, 9, 'strings need quotes ("alice")'),
        ("{ok: True}", 1, 6, "write true"),
        ("{n: 1.5n}", 1, 5, "whole number"),
        ("{n: 9223372036854775808n}", 1, 5, "does not fit in an int64"),
        ("{s: 'abc}", 1, 5, "never closed"),
        ("{a: 1}}", 1, 7, "after the value"),
        ("{a: 1, a: 2}", 1, 8, "appears twice"),
        ("{a: 1 b: 2}", 1, 7, "expected `,` or `}`"),
        ("/* open", 1, 1, "unclosed"),
        ("{x: 12abc}", 1, 7, "right after the number"),
    ],
)
def test_parser_errors_say_where_and_why(text, line, column, fragment):
    with pytest.raises(ArgsSyntaxError) as caught:
        parse_args(text)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert fragment in caught.value.message


def test_validator_tools_does_not_import_textual_or_the_emulator():
    code = "import sys, console.validator_tools; print(any(m.startswith(('textual', 'console.emulator')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------
# Properties


field_names = st.from_regex(r"[a-z][a-zA-Z0-9_]{0,8}", fullmatch=True)
literal_values = st.one_of(st.text(max_size=5), st.integers(-(2**63), 2**63 - 1),
                           st.floats(allow_nan=False, allow_infinity=False), st.booleans())
leaf_validators = st.one_of(
    st.sampled_from([S, N, I, NULL, {"type": "boolean"}, {"type": "bytes"}, {"type": "any"}]),
    st.sampled_from(sorted(TABLES)).map(lambda t: {"type": "id", "tableName": t}),
    literal_values.map(lit),
)


def _compound(children):
    return st.one_of(
        children.map(lambda v: {"type": "array", "value": v}),
        st.dictionaries(field_names, st.tuples(children, st.booleans()), max_size=4).map(
            lambda fields: {"type": "object", "value": {k: {"fieldType": v, "optional": o} for k, (v, o) in fields.items()}}),
        st.lists(children, min_size=1, max_size=3).map(lambda members: {"type": "union", "value": members}),
        children.map(lambda v: {"type": "record", "keys": S, "values": {"fieldType": v, "optional": False}}),
    )


validators = st.recursive(leaf_validators, _compound, max_leaves=8)

any_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.integers(-(2**63), 2**63 - 1), st.text(max_size=8),
              st.binary(max_size=8)),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(field_names, children, max_size=3)),
    max_leaves=6,
)


def values_for(validator) -> st.SearchStrategy:
    kind = validator["type"]
    simple = {"string": st.text(max_size=8), "number": st.floats(), "bigint": st.integers(-(2**63), 2**63 - 1),
              "null": st.none(), "boolean": st.booleans(), "bytes": st.binary(max_size=8), "any": any_values}
    if kind in simple:
        return simple[kind]
    if kind == "literal":
        return st.just(values.decode(validator["value"]))
    if kind == "id":
        return st.integers(0, 255).map(lambda seed: make_id(validator["tableName"], seed))
    if kind == "array":
        return st.lists(values_for(validator["value"]), max_size=3)
    if kind == "record":
        return st.dictionaries(field_names, values_for(validator["values"]["fieldType"]), max_size=3)
    if kind == "union":
        return st.one_of([values_for(member) for member in validator["value"]])
    fields = validator["value"]
    required = {k: values_for(s["fieldType"]) for k, s in fields.items() if not s["optional"]}
    optional = {k: values_for(s["fieldType"]) for k, s in fields.items() if s["optional"]}
    return st.fixed_dictionaries(required, optional=optional)


@st.composite
def validator_and_value(draw):
    validator = draw(validators)
    return validator, draw(values_for(validator))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(validator_and_value())
def test_any_value_generated_from_a_validator_passes_it(pair):
    validator, value = pair
    validate(validator, value, table_of_id=lookup)


@settings(max_examples=300, deadline=None)
@given(validators)
def test_skeletons_validate_once_placeholders_are_filled(validator):
    filled = skeleton(validator, id_value=make_id)
    validate(validator, filled, table_of_id=lookup)
    text = type_text(validator, width=10_000)
    assert text and "\n" not in text


@settings(max_examples=300, deadline=None)
@given(any_values)
def test_format_then_parse_round_trips(value):
    back = parse_args(format_value(value))
    assert values.compare(back, value) == 0
    assert values.type_name(back) == values.type_name(value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_parser_never_fails_with_anything_but_a_syntax_error(text):
    try:
        parse_args(text)
    except ArgsSyntaxError as error:
        assert error.line >= 1 and error.column >= 1
