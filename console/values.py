"""Convex values in Python, and their JSON encodings (PROTOCOL §2, QUERIES §0 and §2.4).

Python representation: None, float (float64), int (int64, never bool), bool, str, bytes,
list, dict[str, value], and `UNDEFINED` (only in filters, index ranges and patches).
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from typing import Any

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
MAX_NESTING = 16
MAX_FIELD_NAME_LENGTH = 1024
MAX_DOCUMENT_SIZE = 1 << 20
SYSTEM_FIELDS = ("_id", "_creationTime")

# Canonical format name by every accepted spelling (PROTOCOL §1.3).
FORMATS = {
    "convex_encoded_json": "convex_encoded_json",
    "convex_json": "convex_encoded_json",
    "json": "json",
    "convex_clean_json": "json",
    "export_json": "export_json",
}


class _Undefined:
    """The `undefined` sentinel: a missing field in filters, index ranges and patches."""

    _instance: "_Undefined | None" = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "undefined"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self):
        return (_Undefined, ())

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


UNDEFINED = _Undefined()


# ---------------------------------------------------------------------------
# Validation


def check_field_name(name: str) -> None:
    """Raise ValueError unless `name` can be a field of a Convex object."""
    if not isinstance(name, str):
        raise ValueError(f"Field name {name!r} must be a string, not {type(name).__name__}")
    if name.startswith("$"):
        raise ValueError(f"Field name {name} starts with '$', which is reserved.")
    if not (name.isascii() and name.isprintable()):  # checked in C: non-control ASCII only
        _raise_bad_field_character(name)
    if len(name) > MAX_FIELD_NAME_LENGTH:
        raise ValueError(f"Field name is too long ({len(name)} > maximum {MAX_FIELD_NAME_LENGTH})")


def _raise_bad_field_character(name: str) -> None:
    for char in name:
        if not (" " <= char <= "~"):
            raise ValueError(
                f"Field name {name!r} has invalid character {char!r}: "
                "Field names can only contain non-control ASCII characters"
            )


def _check_int(value: int) -> None:
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"Integer {value} does not fit in an int64 (range -2^63 .. 2^63-1)")


def _check_str(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"String {value!r} is not valid Unicode (lone surrogate)") from None


def _too_nested(depth: int) -> ValueError:
    return ValueError(f"Value is too nested (nested {depth} levels deep > maximum nesting {MAX_NESTING})")


def check_value(value: Any, *, allow_undefined: bool = False, _depth: int = 0) -> None:
    """Raise ValueError unless `value` is a valid Convex value (types, int range, names, nesting)."""
    if type(value) in _CONTAINER_TYPES and surely_valid(value, _depth):
        return
    _check_value_full(value, allow_undefined, _depth)


def _check_value_full(value: Any, allow_undefined: bool, _depth: int) -> None:
    if value is None or isinstance(value, (bool, float, bytes)):
        return
    if value is UNDEFINED:
        if not allow_undefined:
            raise ValueError("undefined is not a valid Convex value here")
        return
    if isinstance(value, int):
        _check_int(value)
        return
    if isinstance(value, str):
        _check_str(value)
        return
    if isinstance(value, (list, dict)):
        if _depth + 1 > MAX_NESTING:
            raise _too_nested(_depth + 1)
        if isinstance(value, list):
            for item in value:
                _check_value_full(item, allow_undefined, _depth + 1)
        else:
            for key, item in value.items():
                check_field_name(key)
                _check_value_full(item, allow_undefined, _depth + 1)
        return
    raise ValueError(f"{type(value).__name__} {value!r} is not a supported Convex value")


# ---------------------------------------------------------------------------
# Fast paths: one tight pass over plain dicts, lists and scalars. They answer "surely"
# or "not sure"; "not sure" runs the full code above, which gives the exact error.

_CONTAINER_TYPES = (dict, list)
_copysign = math.copysign


def _names_surely_ok(obj: dict) -> bool:
    """Every key is a valid field name: all of them checked at once in C on their concatenation."""
    try:
        joined = "".join(obj)
    except TypeError:  # a key that is not a str
        return False
    if joined.isascii() and joined.isprintable() and "$" not in joined and len(joined) <= MAX_FIELD_NAME_LENGTH:
        return True
    for name in obj:  # a '$' inside a name, or long names: check each
        if name.startswith("$") or len(name) > MAX_FIELD_NAME_LENGTH or not (name.isascii() and name.isprintable()):
            return False
    return True


def _str_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def surely_valid(value: Any, depth: int = 0) -> bool:
    """True when `check_value(value)` passes, for plain containers and scalars; False means
    "not sure" (an int or str subclass, UNDEFINED, an error...)."""
    kind = type(value)
    if kind is dict:
        if not _names_surely_ok(value):
            return False
        items = value.values()
    elif kind is list:
        items = value
    else:
        return _scalar_surely_valid(value)
    depth += 1
    if depth > MAX_NESTING:
        return False
    for item in items:
        kind = type(item)
        if kind is str:
            if not item.isascii() and not _str_ok(item):
                return False
        elif kind is float or kind is bool or item is None or kind is bytes:
            continue
        elif kind is int:
            if not INT64_MIN <= item <= INT64_MAX:
                return False
        elif kind is dict or kind is list:
            if not surely_valid(item, depth):
                return False
        else:
            return False
    return True


def _scalar_surely_valid(value: Any) -> bool:
    kind = type(value)
    if kind is str:
        return value.isascii() or _str_ok(value)
    if kind is int:
        return INT64_MIN <= value <= INT64_MAX
    return value is None or kind is float or kind is bool or kind is bytes


def _encodes_to_itself(value: Any, depth: int) -> bool:
    """True when `encode(value)` equals `value`, key order included: plain dicts with sorted
    keys and lists of valid strings, finite floats other than -0.0, booleans and None."""
    if type(value) is dict:
        if not _names_surely_ok(value):
            return False
        keys = list(value)
        if len(keys) > 1 and keys != sorted(keys):
            return False
        items = value.values()
    else:
        items = value
    depth += 1
    if depth > MAX_NESTING:
        return False
    for item in items:
        kind = type(item)
        if kind is str:
            if not item.isascii() and not _str_ok(item):
                return False
        elif kind is float:
            # inf - inf and nan - nan are nan; -0.0 needs its sign bit.
            if item - item != 0.0 or (item == 0.0 and _copysign(1.0, item) < 0):
                return False
        elif kind is bool or item is None:
            continue
        elif kind is dict or kind is list:
            if not _encodes_to_itself(item, depth):
                return False
        else:
            return False
    return True


def check_document_fields(doc: dict) -> None:
    """Top-level rules of a stored document: `_` prefix reserved, size limit."""
    if not isinstance(doc, dict):
        raise ValueError(f"A document must be an object, not {type_name(doc)}")
    for name in doc:
        if isinstance(name, str) and name.startswith("_") and name not in SYSTEM_FIELDS:
            raise ValueError(
                f"Field '{name}' starts with an underscore, which is only allowed for system fields like '_id'"
            )
    check_value(doc)
    size = value_size(doc)
    if size > MAX_DOCUMENT_SIZE:
        raise ValueError(
            f"Document is too large ({size} bytes > maximum size {MAX_DOCUMENT_SIZE} bytes)"
        )


def value_size(value: Any) -> int:
    """Convex-like byte size: a type tag per value, terminators for strings and containers."""
    if value is None or value is UNDEFINED or isinstance(value, bool):
        return 1
    if isinstance(value, (int, float)):
        return 9
    if isinstance(value, str):
        return 2 + len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes):
        return 2 + len(value)
    if isinstance(value, list):
        return 2 + sum(value_size(item) for item in value)
    if isinstance(value, dict):
        return 2 + sum(len(key) + 1 + value_size(item) for key, item in value.items())
    raise ValueError(f"{type(value).__name__} is not a supported Convex value")


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise ValueError(f"{type(value).__name__} is not a supported Convex value")


# ---------------------------------------------------------------------------
# Scalars <-> base64


def _int_to_b64(value: int) -> str:
    return base64.b64encode(value.to_bytes(8, "little", signed=True)).decode("ascii")


def _float_to_b64(value: float) -> str:
    return base64.b64encode(struct.pack("<d", value)).decode("ascii")


def _is_special_float(value: float) -> bool:
    return not math.isfinite(value) or (value == 0.0 and math.copysign(1.0, value) < 0)


def _b64decode(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a base64 string, got {type(text).__name__}")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not valid base64: {text!r}") from None


def _b64_8_bytes(text: Any, key: str) -> bytes:
    raw = _b64decode(text, f"{key} value")
    if len(raw) != 8:
        raise ValueError(f"Received {key} value of {len(raw)} bytes, expected 8: {text!r}")
    return raw


# ---------------------------------------------------------------------------
# convex_encoded_json


def encode(value: Any, *, _depth: int = 0) -> Any:
    """Python value -> convex_encoded_json (object keys sorted, as the JS encoder does).
    A container that encodes to itself (see `_encodes_to_itself`) is returned as is, not copied."""
    kind = type(value)
    if kind is dict or kind is list:
        return value if _encodes_to_itself(value, _depth) else _encode_container(value, _depth)
    return _encode_other(value, _depth)


def _encode_container(value: dict | list, depth: int) -> Any:
    """encode() of a plain dict or list in one pass; common scalars inline, the rest through
    `_encode_other`. Same traversal order as `_encode_other`, so the same first error."""
    depth += 1
    if depth > MAX_NESTING:
        raise _too_nested(depth)
    if type(value) is list:
        return [_encode_item(item, depth) for item in value]
    if not _names_surely_ok(value):
        for key in value:
            check_field_name(key)
    return {key: _encode_item(value[key], depth) for key in sorted(value)}


def _encode_item(item: Any, depth: int) -> Any:
    kind = type(item)
    if kind is str:
        if not item.isascii():
            _check_str(item)
        return item
    if kind is float:
        if item - item != 0.0 or (item == 0.0 and _copysign(1.0, item) < 0):
            return {"$float": _float_to_b64(item)}
        return item
    if kind is bool or item is None:
        return item
    if kind is dict or kind is list:
        return item if _encodes_to_itself(item, depth) else _encode_container(item, depth)
    return _encode_other(item, depth)


def _encode_other(value: Any, _depth: int) -> Any:
    """encode() of anything: the reference implementation (subclasses, int, bytes, errors)."""
    if value is None or isinstance(value, bool):
        return value
    if value is UNDEFINED:
        return {"$undefined": None}
    if isinstance(value, int):
        _check_int(value)
        return {"$integer": _int_to_b64(value)}
    if isinstance(value, float):
        return {"$float": _float_to_b64(value)} if _is_special_float(value) else value
    if isinstance(value, str):
        _check_str(value)
        return value
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, (list, dict)):
        if _depth + 1 > MAX_NESTING:
            raise _too_nested(_depth + 1)
        if isinstance(value, list):
            return [encode(item, _depth=_depth + 1) for item in value]
        for key in value:
            check_field_name(key)
        return {key: encode(value[key], _depth=_depth + 1) for key in sorted(value)}
    raise ValueError(f"{type(value).__name__} {value!r} is not a supported Convex value")


def _decode_special(key: str, payload: Any, allow_undefined: bool) -> Any:
    if key == "$integer":
        return int.from_bytes(_b64_8_bytes(payload, key), "little", signed=True)
    if key == "$float":
        number = struct.unpack("<d", _b64_8_bytes(payload, key))[0]
        if not _is_special_float(number):
            raise ValueError(f"Float64 {number!r} should be encoded as a number, not as $float")
        return number
    if key == "$bytes":
        return _b64decode(payload, "$bytes value")
    if key == "$undefined":
        if not allow_undefined:
            raise ValueError("{\"$undefined\": null} is not allowed here (undefined is not a Convex value)")
        if payload is not None:
            raise ValueError(f"$undefined must be null, got {payload!r}")
        return UNDEFINED
    if key in ("$set", "$map"):
        raise ValueError(f"Received a {key[1:]} ({key}), which is no longer supported as a Convex type")
    raise ValueError(f"Field name {key} starts with '$', which is reserved.")


def decode(data: Any, *, allow_undefined: bool = False, _depth: int = 0) -> Any:
    """convex_encoded_json -> Python value. Strict: raises ValueError with a precise message."""
    if data is None or isinstance(data, (bool, str)):
        if isinstance(data, str):
            _check_str(data)
        return data
    if isinstance(data, (int, float)):
        # Every JSON number is a float64; integers travel only as $integer.
        try:
            return float(data)
        except OverflowError:
            raise ValueError(f"Number {data} is out of range for a float64") from None
    if isinstance(data, (list, dict)):
        if _depth + 1 > MAX_NESTING and not (isinstance(data, dict) and _is_special_object(data)):
            raise _too_nested(_depth + 1)
        if isinstance(data, list):
            return [decode(item, allow_undefined=allow_undefined, _depth=_depth + 1) for item in data]
        if len(data) == 1:
            (key,) = data
            if isinstance(key, str) and key.startswith("$"):
                return _decode_special(key, data[key], allow_undefined)
        result = {}
        for key, item in data.items():
            check_field_name(key)
            result[key] = decode(item, allow_undefined=allow_undefined, _depth=_depth + 1)
        return result
    raise ValueError(f"{type(data).__name__} {data!r} is not valid convex_encoded_json")


def _is_special_object(data: dict) -> bool:
    return len(data) == 1 and isinstance(next(iter(data)), str) and next(iter(data)).startswith("$")


# ---------------------------------------------------------------------------
# Other output formats


def _clean_float(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def to_clean_json(value: Any) -> Any:
    """Format `json`: lossy. int64 -> decimal string, bytes -> base64 string, NaN/±Inf -> strings.
    A container of strings, finite floats, booleans and None is returned as is, not copied."""
    kind = type(value)
    if (kind is dict or kind is list) and _cleans_to_itself(value):
        return value
    return _to_clean_json_copy(value)


def _cleans_to_itself(value: dict | list) -> bool:
    for item in (value.values() if type(value) is dict else value):
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is float:
            if item - item != 0.0:  # NaN or ±Inf
                return False
        elif kind is dict or kind is list:
            if not _cleans_to_itself(item):
                return False
        else:
            return False
    return True


def _to_clean_json_copy(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        _check_int(value)
        return str(value)
    if isinstance(value, float):
        return _clean_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, list):
        return [to_clean_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_clean_json(item) for key, item in value.items()}
    raise ValueError(f"{value!r} ({type(value).__name__}) cannot be exported as JSON")


def to_export_json(value: Any) -> Any:
    """Format `export_json`: int64 as a JSON number; special floats and bytes as $float/$bytes."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        _check_int(value)
        return value
    if isinstance(value, float):
        return {"$float": _float_to_b64(value)} if _is_special_float(value) else value
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, list):
        return [to_export_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_export_json(item) for key, item in value.items()}
    raise ValueError(f"{value!r} ({type(value).__name__}) cannot be exported as JSON")


def normalize_format(fmt: str) -> str:
    """The canonical name of a value format, or ValueError for an unknown one."""
    try:
        return FORMATS[fmt]
    except (KeyError, TypeError):
        known = ", ".join(sorted(FORMATS))
        raise ValueError(f"Unknown value format {fmt!r}; expected one of: {known}") from None


def encode_for_format(value: Any, fmt: str) -> Any:
    canonical = normalize_format(fmt)
    if canonical == "convex_encoded_json":
        return encode(value)
    if canonical == "json":
        return to_clean_json(value)
    return to_export_json(value)


# ---------------------------------------------------------------------------
# Total order (QUERIES §2.4)


def _float_key(value: float) -> int:
    bits = struct.unpack(">q", struct.pack(">d", value))[0]
    # IEEE total order: for negative numbers flip every bit but the sign.
    return bits ^ 0x7FFFFFFFFFFFFFFF if bits < 0 else bits


def sort_key(value: Any) -> tuple:
    """A key whose tuple order is Convex's: undefined < null < int64 < float64 < bool < string
    < bytes < array < object."""
    if value is UNDEFINED:
        return (0,)
    if value is None:
        return (1,)
    if isinstance(value, bool):
        return (4, value)
    if isinstance(value, int):
        return (2, value)
    if isinstance(value, float):
        return (3, _float_key(value))
    if isinstance(value, str):
        return (5, value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes):
        return (6, value)
    if isinstance(value, list):
        return (7, tuple(sort_key(item) for item in value))
    if isinstance(value, dict):
        return (10, tuple((key.encode("utf-8"), sort_key(value[key])) for key in sorted(value)))
    raise ValueError(f"{type(value).__name__} is not a supported Convex value")


def compare(a: Any, b: Any) -> int:
    key_a, key_b = sort_key(a), sort_key(b)
    return (key_a > key_b) - (key_a < key_b)


# ---------------------------------------------------------------------------
# Timestamps (PROTOCOL §2.2)


def ts_to_wire(ns: int) -> str:
    """u64 nanoseconds -> base64 of its 8 little-endian bytes."""
    if not isinstance(ns, int) or isinstance(ns, bool) or not 0 <= ns < (1 << 64):
        raise ValueError(f"Timestamp {ns!r} is not a u64")
    return base64.b64encode(ns.to_bytes(8, "little")).decode("ascii")


def ts_from_wire(text: str) -> int:
    return int.from_bytes(_b64_8_bytes(text, "timestamp"), "little")
