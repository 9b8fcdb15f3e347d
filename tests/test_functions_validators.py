"""The `v` builders: ValidatorJSON shapes (QUERIES §4.3) and agreement with the engine's checker."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console import ids
from console.emulator.engine.validate import ValidationError, validate_value
from console.emulator.functions import query
from console.emulator.validators import (
    export_args,
    export_returns,
    pagination_opts_validator,
    v,
)

TABLES = {10001: "posts", 10002: "users", 7: "_storage"}
TABLE_NUMBERS = {name: number for number, name in TABLES.items()}


def lookup(number):
    return TABLES.get(number)


def test_simple_validator_json():
    assert v.string().json() == {"type": "string"}
    assert v.number().json() == {"type": "number"}
    assert v.float64().json() == {"type": "number"}
    assert v.int64().json() == {"type": "bigint"}
    assert v.bigint().json() == {"type": "bigint"}
    assert v.boolean().json() == {"type": "boolean"}
    assert v.null().json() == {"type": "null"}
    assert v.bytes().json() == {"type": "bytes"}
    assert v.any().json() == {"type": "any"}
    assert v.id("posts").json() == {"type": "id", "tableName": "posts"}


def test_compound_validator_json():
    assert v.array(v.string()).json() == {"type": "array", "value": {"type": "string"}}
    assert v.union(v.string(), v.null()).json() == {"type": "union", "value": [{"type": "string"}, {"type": "null"}]}
    assert v.literal("a").json() == {"type": "literal", "value": "a"}
    assert v.literal(1).json() == {"type": "literal", "value": {"$integer": "AQAAAAAAAAA="}}
    assert v.literal(1.5).json() == {"type": "literal", "value": 1.5}
    assert v.record(v.string(), v.number()).json() == {
        "type": "record",
        "keys": {"type": "string"},
        "values": {"fieldType": {"type": "number"}, "optional": False},
    }
    assert v.object({"a": v.optional(v.int64()), "b": v.string()}).json() == {
        "type": "object",
        "value": {
            "a": {"fieldType": {"type": "bigint"}, "optional": True},
            "b": {"fieldType": {"type": "string"}, "optional": False},
        },
    }


def test_optional_is_only_a_field_flag():
    optional = v.optional(v.string())
    assert optional.json() == {"type": "string"}
    assert optional.is_optional and not v.string().is_optional


def test_pagination_opts_shape_matches_convex():
    shape = pagination_opts_validator.json()["value"]
    assert shape["numItems"] == {"fieldType": {"type": "number"}, "optional": False}
    assert shape["cursor"] == {"fieldType": {"type": "union", "value": [{"type": "string"}, {"type": "null"}]}, "optional": False}
    assert shape["endCursor"]["optional"] and shape["maximumBytesRead"]["optional"]


def test_export_args_and_returns():
    assert export_args(None) == {"type": "any"}
    assert export_returns(None) is None
    assert export_args({"id": v.id("posts")}) == {
        "type": "object",
        "value": {"id": {"fieldType": {"type": "id", "tableName": "posts"}, "optional": False}},
    }

    @query(args={"n": v.number()}, returns=v.array(v.string()))
    def fn(ctx, args):
        return []

    assert fn.export_args()["value"]["n"]["fieldType"] == {"type": "number"}
    assert fn.export_returns() == {"type": "array", "value": {"type": "string"}}


def test_bad_builder_inputs_raise():
    with pytest.raises(TypeError):
        v.array("string")
    with pytest.raises(TypeError):
        v.record(v.string(), v.optional(v.number()))
    with pytest.raises(TypeError):
        v.literal([1])
    with pytest.raises(TypeError):
        v.object({"a": None})


# ---------------------------------------------------------------------------
# Property: a value generated for a validator passes the engine's checker


def _id_for(table):
    number = TABLE_NUMBERS[table]
    return st.binary(min_size=16, max_size=16).map(lambda raw: ids.encode_id(number, raw))


floats = st.floats(allow_nan=False).filter(lambda f: not (f == 0 and math.copysign(1, f) < 0))
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6)

LEAVES = [
    (v.string(), st.text(max_size=8)),
    (v.number(), floats),
    (v.int64(), ints),
    (v.boolean(), st.booleans()),
    (v.null(), st.none()),
    (v.bytes(), st.binary(max_size=8)),
    (v.any(), st.one_of(st.text(max_size=4), floats, st.none())),
    (v.id("posts"), _id_for("posts")),
    (v.id("users"), _id_for("users")),
    (v.literal("draft"), st.just("draft")),
    (v.literal(3), st.just(3)),
]


def _leaf():
    return st.sampled_from(LEAVES)


def _extend(children):
    def array(child):
        validator, values_ = child
        return (v.array(validator), st.lists(values_, max_size=3))

    def obj(fields):
        validator = v.object({name: (v.optional(c[0]) if i % 2 else c[0]) for i, (name, c) in enumerate(fields.items())})
        strategies = {}
        for i, (name, (_, values_)) in enumerate(fields.items()):
            strategies[name] = values_
        required = {n: s for i, (n, s) in enumerate(strategies.items()) if i % 2 == 0}
        optional = {n: s for i, (n, s) in enumerate(strategies.items()) if i % 2 == 1}
        return (validator, st.fixed_dictionaries(required, optional=optional))

    def union(members):
        return (v.union(*[m[0] for m in members]), st.one_of(*[m[1] for m in members]))

    def record(child):
        return (v.record(v.string(), child[0]), st.dictionaries(names, child[1], max_size=3))

    return st.one_of(
        children.map(array),
        st.dictionaries(names, children, min_size=1, max_size=3).map(obj),
        st.lists(children, min_size=1, max_size=3).map(union),
        children.map(record),
    )


validators_with_values = st.recursive(_leaf(), _extend, max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_generated_values_pass_their_validator(data):
    validator, strategy = data.draw(validators_with_values)
    value = data.draw(strategy)
    validate_value(validator.json(), value, table_name_of=lookup)


WRONG = {
    "string": 1.5,
    "number": "x",
    "bigint": 1.5,
    "boolean": "yes",
    "null": 0.0,
    "bytes": "b",
    "id": 12.0,
    "literal": "something-else",
}


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([leaf for leaf in LEAVES if leaf[0].kind != "any"]), names)
def test_mismatch_names_the_path(leaf, field):
    validator = v.object({field: leaf[0]})
    with pytest.raises(ValidationError) as raised:
        validate_value(validator.json(), {field: WRONG[leaf[0].kind]}, table_name_of=lookup)
    assert f".{field}" in str(raised.value)


def test_id_of_another_table_is_rejected():
    other = ids.encode_id(TABLE_NUMBERS["users"], bytes(16))
    with pytest.raises(ValidationError) as raised:
        validate_value(v.object({"id": v.id("posts")}).json(), {"id": other}, table_name_of=lookup)
    assert "users" in str(raised.value) and 'v.id("posts")' in str(raised.value)


# ---------------------------------------------------------------------------
# End to end: the runner accepts generated args and validates the echoed return value

_RUNNER = {}


def _echo_runner():
    if not _RUNNER:
        from console.emulator.app import App
        from console.emulator.engine import Database
        from console.emulator.runtime import FunctionRunner

        db = Database.open(None)
        db.write(lambda tx: [tx.insert("posts", {}), tx.insert("users", {})])
        mapping = db.table_mapping()
        assert mapping[10001] == "posts" and mapping[10002] == "users"
        _RUNNER["runner"] = FunctionRunner(db, App("echo"))
        _RUNNER["count"] = 0
    return _RUNNER["runner"]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_runner_accepts_generated_args_and_returns(data):
    from console.emulator.identity import Identity

    runner = _echo_runner()
    validator, strategy = data.draw(validators_with_values)
    value = data.draw(strategy)
    _RUNNER["count"] += 1
    name = f"echo{_RUNNER['count']}"
    runner.app.register("echo", name, query(args={"x": validator}, returns=validator)(lambda ctx, args: args["x"]))
    outcome = runner.run(f"echo:{name}", {"x": value}, identity=Identity.admin())
    assert outcome.ok, outcome.error_message
    assert outcome.value == value
