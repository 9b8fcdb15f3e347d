import json
import math
import struct
from functools import cmp_to_key

import pytest
from hypothesis import given, settings, strategies as st

from console import values as V
from console.values import UNDEFINED

# ---------------------------------------------------------------------------
# Strategies

int64s = st.one_of(
    st.integers(min_value=V.INT64_MIN, max_value=V.INT64_MAX),
    st.sampled_from([V.INT64_MIN, V.INT64_MAX, 0, -1, 1]),
)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, -0.0, 0.0, math.inf, -math.inf, 5e-324, -1.7976931348623157e308]),
)
field_names = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12
).filter(lambda name: not name.startswith("$"))
scalars = st.one_of(
    st.none(), st.booleans(), int64s, floats, st.text(max_size=20), st.binary(max_size=20)
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(field_names, children, max_size=4),
    ),
    max_leaves=20,
)


def same(a, b) -> bool:
    """Structural equality that tells int from float from bool, NaN == NaN and -0.0 != 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


# ---------------------------------------------------------------------------
# Known vectors


def test_known_vectors():
    assert V.encode(1) == {"$integer": "AQAAAAAAAAA="}
    assert V.encode(3) == {"$integer": "AwAAAAAAAAA="}
    assert V.encode(math.nan) == {"$float": "AAAAAAAA+H8="}
    assert V.encode(-0.0) == {"$float": "AAAAAAAAAIA="}
    assert V.decode({"$integer": "AQAAAAAAAAA="}) == 1
    assert math.copysign(1, V.decode({"$float": "AAAAAAAAAIA="})) == -1
    assert V.encode(b"\x00\xff") == {"$bytes": "AP8="}
    assert V.encode(1.5) == 1.5 and V.encode(0.0) == 0.0
    assert V.encode(True) is True and V.encode(None) is None


def test_encode_sorts_keys_and_undefined():
    assert list(V.encode({"b": 1.0, "a": 2.0})) == ["a", "b"]
    assert V.encode(UNDEFINED) == {"$undefined": None}
    assert V.decode({"$undefined": None}, allow_undefined=True) is UNDEFINED
    with pytest.raises(ValueError, match="undefined"):
        V.decode({"$undefined": None})


def test_undefined_sentinel():
    assert repr(UNDEFINED) == "undefined"
    assert not UNDEFINED
    assert type(UNDEFINED)() is UNDEFINED
    import copy
    import pickle

    assert copy.deepcopy(UNDEFINED) is UNDEFINED
    assert pickle.loads(pickle.dumps(UNDEFINED)) is UNDEFINED


def test_json_numbers_decode_as_float():
    assert V.decode(3) == 3.0 and isinstance(V.decode(3), float)
    assert isinstance(V.decode([1, {"x": 2}])[1]["x"], float)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"$float": "AAAAAAAA8D8="}, "should be encoded as a number"),
        ({"$integer": "AQAAAAAAAA=="}, "expected 8"),
        ({"$integer": "not base64!"}, "not valid base64"),
        ({"$integer": 1}, "must be a base64 string"),
        ({"$bytes": "@@"}, "not valid base64"),
        ({"$set": []}, "no longer supported"),
        ({"$map": []}, "no longer supported"),
        ({"$foo": 1}, "starts with '\\$'"),
        ({"$integer": "AQAAAAAAAAA=", "x": 1}, "starts with '\\$'"),
        ({"a\x01": 1}, "invalid character"),
        ({"é": 1}, "invalid character"),
        ({"x" * 1025: 1}, "too long"),
        ({"s": {1, 2}}, "not valid convex_encoded_json"),
        (10**400, "out of range"),
    ],
)
def test_decode_rejects(data, message):
    with pytest.raises(ValueError, match=message):
        V.decode(data)


def test_nesting_limit():
    ok = 1.0
    for _ in range(16):
        ok = [ok]
    V.check_value(ok)
    assert V.decode(V.encode(ok)) == ok
    too_deep = [ok]
    for check in (V.check_value, V.encode, lambda v: V.decode(json.loads(json.dumps(v)))):
        with pytest.raises(ValueError, match="nested"):
            check(too_deep)
    # An $integer at the deepest level is a scalar, not a level.
    deep_int = 1
    for _ in range(16):
        deep_int = {"a": deep_int}
    assert V.decode(V.encode(deep_int)) == deep_int


def test_check_value_rejects():
    with pytest.raises(ValueError, match="int64"):
        V.check_value(2**63)
    with pytest.raises(ValueError, match="int64"):
        V.encode(-(2**63) - 1)
    with pytest.raises(ValueError, match="reserved"):
        V.check_value({"$x": 1})
    with pytest.raises(ValueError, match="not a supported"):
        V.check_value({"x": (1, 2)})
    with pytest.raises(ValueError, match="must be a string"):
        V.encode({1: "a", "b": 2})
    with pytest.raises(ValueError, match="undefined"):
        V.check_value(UNDEFINED)
    V.check_value({"x": UNDEFINED}, allow_undefined=True)
    with pytest.raises(ValueError, match="surrogate"):
        V.check_value("\ud800")
    V.check_field_name("")
    V.check_field_name("_id")
    V.check_field_name("x" * 1024)


def test_document_fields():
    V.check_document_fields({"_id": "x", "_creationTime": 1.0, "name": "a", "n": {"_nested": 1}})
    with pytest.raises(ValueError) as info:
        V.check_document_fields({"_secret": 1})
    assert str(info.value) == (
        "Field '_secret' starts with an underscore, which is only allowed for system fields like '_id'"
    )
    big = {"blob": b"x" * (1 << 20)}
    with pytest.raises(ValueError, match=f"{V.value_size(big)} bytes > maximum size {1 << 20}"):
        V.check_document_fields(big)
    V.check_document_fields({"blob": b"x" * ((1 << 20) - 100)})


def test_value_size():
    assert V.value_size(None) == 1
    assert V.value_size(1) == 9 and V.value_size(1.0) == 9
    assert V.value_size("héllo") == 8
    assert V.value_size([1, 2]) == 20
    assert V.value_size({"ab": True}) == 2 + 3 + 1


def test_formats():
    value = {"n": 2**40, "f": math.inf, "b": b"\x01", "nan": math.nan, "ninf": -math.inf, "x": 1.5}
    assert V.to_clean_json(value) == {
        "n": str(2**40), "f": "Infinity", "b": "AQ==", "nan": "NaN", "ninf": "-Infinity", "x": 1.5
    }
    exported = V.to_export_json(value)
    assert exported["n"] == 2**40 and exported["b"] == {"$bytes": "AQ=="}
    assert exported["f"] == V.encode(math.inf) and exported["x"] == 1.5
    for alias, canonical in [("convex_json", "convex_encoded_json"), ("convex_clean_json", "json")]:
        assert V.encode_for_format(value, alias) == V.encode_for_format(value, canonical)
    assert V.encode_for_format(value, "export_json") == exported
    assert set(V.FORMATS.values()) == {"convex_encoded_json", "json", "export_json"}
    with pytest.raises(ValueError, match="Unknown value format 'yaml'"):
        V.encode_for_format(value, "yaml")


def test_type_names():
    cases = {"string": "s", "number": 1.0, "bigint": 1, "boolean": True, "null": None,
             "bytes": b"", "array": [], "object": {}}
    for name, value in cases.items():
        assert V.type_name(value) == name


def test_timestamps():
    assert V.ts_to_wire(1) == "AQAAAAAAAAA="
    assert V.ts_from_wire(V.ts_to_wire(2**64 - 1)) == 2**64 - 1
    with pytest.raises(ValueError):
        V.ts_to_wire(-1)
    with pytest.raises(ValueError):
        V.ts_from_wire("AQ==")


def test_order_examples():
    ordered = [UNDEFINED, None, -(2**63), 0, 2**63 - 1, -math.nan, -math.inf, -1.0, -0.0, 0.0,
               1.0, math.inf, math.nan, False, True, "", "Z", "a", "\uffff", "\U0001f600",
               b"", b"\x00", [], [None], [1], {}, {"a": 1}, {"a": 1, "b": 1}, {"b": 0}]
    for i, a in enumerate(ordered):
        for j, b in enumerate(ordered):
            assert V.compare(a, b) == (i > j) - (i < j), (a, b)


# ---------------------------------------------------------------------------
# Properties


@settings(max_examples=300, deadline=None)
@given(values)
def test_roundtrip_encoded_json(value):
    encoded = V.encode(value)
    wire = json.loads(json.dumps(encoded, allow_nan=False))
    assert same(V.decode(wire), value)
    assert same(V.decode(V.encode_for_format(value, "convex_json")), value)


@settings(max_examples=200, deadline=None)
@given(values)
def test_clean_and_export_json_never_raise(value):
    json.dumps(V.to_clean_json(value), allow_nan=False)
    json.dumps(V.to_export_json(value), allow_nan=False)
    V.check_value(value)
    assert V.value_size(value) >= 1


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(values, st.just(UNDEFINED)), min_size=1, max_size=8))
def test_sort_is_a_total_order_consistent_with_compare(items):
    by_key = sorted(items, key=V.sort_key)
    by_cmp = sorted(items, key=cmp_to_key(V.compare))
    assert [V.sort_key(x) for x in by_key] == [V.sort_key(x) for x in by_cmp]
    for a, b in zip(by_key, by_key[1:]):
        assert V.compare(a, b) <= 0 and V.compare(b, a) >= 0
    for a in items:
        assert V.compare(a, a) == 0
        for b in items:
            assert V.compare(a, b) == -V.compare(b, a)
            if V.compare(a, b) == 0:
                assert same(V.decode(V.encode(a), allow_undefined=True),
                            V.decode(V.encode(b), allow_undefined=True))


@given(floats, floats)
def test_float_order_matches_ieee_for_ordinary_numbers(a, b):
    if not (math.isnan(a) or math.isnan(b)) and a != b:
        assert V.compare(a, b) == (1 if a > b else -1)


# ---------------------------------------------------------------------------
# Fast paths of encode and check_value agree with the reference implementations
# (the plain recursive code they replaced, kept here as the oracle).


def _ref_encode(value, depth=0):
    if value is None or isinstance(value, bool):
        return value
    if value is UNDEFINED:
        return {"$undefined": None}
    if isinstance(value, int):
        V._check_int(value)
        return {"$integer": V._int_to_b64(value)}
    if isinstance(value, float):
        return {"$float": V._float_to_b64(value)} if V._is_special_float(value) else value
    if isinstance(value, str):
        V._check_str(value)
        return value
    if isinstance(value, bytes):
        return {"$bytes": V.base64.b64encode(value).decode("ascii")}
    if isinstance(value, (list, dict)):
        if depth + 1 > V.MAX_NESTING:
            raise V._too_nested(depth + 1)
        if isinstance(value, list):
            return [_ref_encode(item, depth + 1) for item in value]
        for key in value:
            V.check_field_name(key)
        return {key: _ref_encode(value[key], depth + 1) for key in sorted(value)}
    raise ValueError(f"{type(value).__name__} {value!r} is not a supported Convex value")


def _ref_check(value, allow_undefined=False, depth=0):
    if value is None or isinstance(value, (bool, float, bytes)):
        return
    if value is UNDEFINED:
        if not allow_undefined:
            raise ValueError("undefined is not a valid Convex value here")
        return
    if isinstance(value, int):
        V._check_int(value)
        return
    if isinstance(value, str):
        V._check_str(value)
        return
    if isinstance(value, (list, dict)):
        if depth + 1 > V.MAX_NESTING:
            raise V._too_nested(depth + 1)
        items = value if isinstance(value, list) else value.values()
        if isinstance(value, dict):
            for key, item in value.items():
                V.check_field_name(key)
                _ref_check(item, allow_undefined, depth + 1)
        else:
            for item in items:
                _ref_check(item, allow_undefined, depth + 1)
        return
    raise ValueError(f"{type(value).__name__} {value!r} is not a supported Convex value")


class _Float(float):
    pass


class _Str(str):
    pass


_odd_leaves = st.one_of(
    st.none(), st.booleans(), floats, st.integers(min_value=-(2**64), max_value=2**64),
    st.text(max_size=8), st.sampled_from(["\ud800", "a\udfffb", "é", "日本", "$x", "\x00"]),
    st.binary(max_size=6), st.just(UNDEFINED), st.just((1, 2)), st.builds(_Float, floats),
    st.builds(_Str, st.text(max_size=4)),
)
_odd_names = st.one_of(
    field_names, st.text(max_size=4),
    st.sampled_from(["$x", "a$b", "_id", "é", "\x00", "\ud800", "a" * 1025, "a" * 600, "b" * 600, ""]),
    st.integers(min_value=0, max_value=3),
)
_odd_values = st.recursive(
    _odd_leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_odd_names, inner, max_size=5)),
    max_leaves=25,
)
# Mostly valid values, so that the fast paths' "yes" answers get exercised too.
_wide_values = st.one_of(_odd_values, values)


def _nest(value, depth, as_dict):
    for _ in range(depth):
        value = {"x": value} if as_dict else [value]
    return value


_deep_values = st.builds(_nest, _wide_values, st.integers(min_value=10, max_value=18), st.booleans())


def _result(fn, value):
    try:
        return "ok", json.dumps(fn(value))  # text: key order and float spelling included
    except ValueError as error:
        return "error", str(error)


@settings(max_examples=600, deadline=None)
@given(st.one_of(_wide_values, _deep_values))
def test_encode_equals_reference_encoder(value):
    assert _result(V.encode, value) == _result(_ref_encode, value)


@settings(max_examples=600, deadline=None)
@given(st.one_of(_wide_values, _deep_values), st.booleans())
def test_check_value_equals_reference_check(value, allow_undefined):
    assert _result(lambda x: V.check_value(x, allow_undefined=allow_undefined), value) == _result(
        lambda x: _ref_check(x, allow_undefined), value
    )


def test_encode_returns_a_plain_sorted_document_itself():
    doc = {"_creationTime": 1.5, "_id": "abc", "args": [{"a": None, "b": True}], "name": "é"}
    assert V.encode(doc) is doc
    page = {"page": [doc], "isDone": False, "continueCursor": "c"}  # unsorted: copied, document reused
    encoded = V.encode(page)
    assert list(encoded) == ["continueCursor", "isDone", "page"] and encoded["page"][0] is doc
    for special in (math.nan, math.inf, -math.inf, -0.0, 1, b"x"):
        assert V.encode({"v": special}) == {"v": V.encode(special)}


def _ref_clean(value):
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        V._check_int(value)
        return str(value)
    if isinstance(value, float):
        return V._clean_float(value)
    if isinstance(value, (str, bytes)):
        return value if isinstance(value, str) else V.base64.b64encode(value).decode("ascii")
    if isinstance(value, list):
        return [_ref_clean(item) for item in value]
    if isinstance(value, dict):
        return {key: _ref_clean(item) for key, item in value.items()}
    raise ValueError(f"{value!r} ({type(value).__name__}) cannot be exported as JSON")


def _clean_result(fn, value):
    try:
        return "ok", json.dumps(fn(value), default=repr, skipkeys=False)
    except (ValueError, TypeError) as error:
        return type(error).__name__, str(error)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_wide_values, _deep_values))
def test_to_clean_json_equals_reference(value):
    assert _clean_result(V.to_clean_json, value) == _clean_result(_ref_clean, value)
