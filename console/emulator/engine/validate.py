"""Check a value against a ValidatorJSON (QUERIES §4.3) with the backend's messages.

Used for schema enforcement by the engine and for argument/return validation by the runtime.
`table_name_of(table_number) -> str | None` resolves the table of an id for `v.id(...)`.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any, Callable

from console import ids, values
from console.emulator.errors import ConvexEngineError


class ValidationError(ConvexEngineError):
    """A value that does not match its validator; str(error) is the Convex message."""


TableLookup = Callable[[int], "str | None"]


def validate_value(validator: dict, value: Any, path: str = "", *, table_name_of: TableLookup | None = None) -> None:
    """Raise ValidationError unless `value` matches `validator` (ValidatorJSON)."""
    _check(validator, value, path, table_name_of or (lambda number: None))


def _context(path: str) -> str:
    return f"Path: {path}" if path else ""


def _no_match(validator: dict, value: Any, path: str) -> ValidationError:
    return ValidationError(
        f"Value does not match validator.\n{_context(path)}\nValue: {display_value(value)}\n"
        f"Validator: {display_validator(validator)}"
    )


_SIMPLE = {
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, float),
    "float64": lambda v: isinstance(v, float),
    "bigint": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "int64": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "bytes": lambda v: isinstance(v, bytes),
}


def _check(validator: dict, value: Any, path: str, lookup: TableLookup) -> None:
    kind = validator.get("type")
    if kind in _SIMPLE:
        if not _SIMPLE[kind](value):
            raise _no_match(validator, value, path)
    elif kind == "any":
        return
    elif kind == "id":
        _check_id(validator, value, path, lookup)
    elif kind == "literal":
        expected = values.decode(validator["value"])
        if values.compare(value, expected) != 0 or type(value) is not type(expected):
            raise ValidationError(
                f"`{display_value(value)}` does not match literal validator "
                f"`v.literal({_display_literal(expected)})`.{_context(path)}"
            )
    elif kind == "array":
        if not isinstance(value, list):
            raise _no_match(validator, value, path)
        for i, item in enumerate(value):
            _check(validator["value"], item, f"{path}[{i}]", lookup)
    elif kind == "record":
        if not isinstance(value, dict):
            raise _no_match(validator, value, path)
        for key, item in value.items():
            _check(validator["keys"], key, f"{path}.keys()", lookup)
            _check(validator["values"]["fieldType"], item, f"{path}.values()", lookup)
    elif kind == "object":
        _check_object(validator, value, path, lookup)
    elif kind == "union":
        members = validator["value"]
        if len(members) == 1:
            return _check(members[0], value, path, lookup)
        for member in members:
            try:
                _check(member, value, path, lookup)
                return
            except ValidationError:
                continue
        raise _no_match(validator, value, path)
    else:
        raise ConvexEngineError(f"Unknown validator type {kind!r}")


def _check_id(validator: dict, value: Any, path: str, lookup: TableLookup) -> None:
    expected = validator["tableName"]
    if not isinstance(value, str):
        raise _no_match(validator, value, path)
    try:
        number, _ = ids.decode_id(value)
    except ids.InvalidId:
        raise _no_match(validator, value, path) from None
    found = lookup(number)
    if found is None:
        raise _no_match(validator, value, path)
    if found != expected:
        if found.startswith("_"):
            raise ValidationError(
                f"Found ID \"{value}\" from a system table, which does not match the table name in validator "
                f"`v.id(\"{expected}\")`.{_context(path)}"
            )
        raise ValidationError(
            f"Found ID \"{value}\" from table `{found}`, which does not match the table name in validator "
            f"`v.id(\"{expected}\")`.{_context(path)}"
        )


def _check_object(validator: dict, value: Any, path: str, lookup: TableLookup) -> None:
    if not isinstance(value, dict):
        raise _no_match(validator, value, path)
    fields = validator["value"]
    for name in sorted(fields):
        spec = fields[name]
        if name in value and value[name] is not values.UNDEFINED:
            _check(spec["fieldType"], value[name], f"{path}.{name}", lookup)
        elif not spec.get("optional"):
            raise ValidationError(
                f"Object is missing the required field `{name}`. Consider wrapping the field validator in "
                f"`v.optional(...)` if this is expected.\n{_context(path)}\nObject: {display_value(value)}\n"
                f"Validator: {display_validator(validator)}"
            )
    for name in sorted(value):
        if name not in fields:
            raise ValidationError(
                f"Object contains extra field `{name}` that is not in the validator.\n{_context(path)}\n"
                f"Object: {display_value(value)}\nValidator: {display_validator(validator)}"
            )


# ---------------------------------------------------------------------------
# Display, as the backend prints values and validators in messages


def _display_float(number: float) -> str:
    """Rust's `{:?}` of an f64, as the backend prints values: 12.0, 1.5, NaN, inf, -0.0."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    text = repr(number)
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa}e{int(exponent)}"
    return text


def display_value(value: Any) -> str:
    if value is None:
        return "null"
    if value is values.UNDEFINED:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _display_float(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bytes):
        return f"b\"{base64.b64encode(value).decode('ascii')}\""
    if isinstance(value, list):
        return "[" + ", ".join(display_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {display_value(value[k])}" for k in sorted(value)) + "}"
    return repr(value)


def _display_literal(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return display_value(value)
    if isinstance(value, int):
        return "<bigint>"
    if isinstance(value, float):
        return _json_number(value) if math.isfinite(value) else "<number>"
    return json.dumps(value, ensure_ascii=False)


def _json_number(number: float) -> str:
    """serde_json's rendering of a finite f64 (12.0 -> "12.0")."""
    return repr(number) if "e" not in repr(number) else json.dumps(number)


_SIMPLE_DISPLAY = {
    "null": "v.null()",
    "number": "v.float64()",
    "float64": "v.float64()",
    "bigint": "v.int64()",
    "int64": "v.int64()",
    "boolean": "v.boolean()",
    "string": "v.string()",
    "bytes": "v.bytes()",
    "any": "v.any()",
}


def _display_field(spec: dict) -> str:
    inner = display_validator(spec["fieldType"])
    return f"v.optional({inner})" if spec.get("optional") else inner


def display_validator(validator: dict) -> str:
    kind = validator.get("type")
    if kind in _SIMPLE_DISPLAY:
        return _SIMPLE_DISPLAY[kind]
    if kind == "id":
        return f"v.id(\"{validator['tableName']}\")"
    if kind == "literal":
        return f"v.literal({_display_literal(values.decode(validator['value']))})"
    if kind == "array":
        return f"v.array({display_validator(validator['value'])})"
    if kind == "record":
        return f"v.record({display_validator(validator['keys'])}, {_display_field(validator['values'])})"
    if kind == "object":
        fields = validator["value"]
        return "v.object({" + ", ".join(f"{k}: {_display_field(fields[k])}" for k in sorted(fields)) + "})"
    if kind == "union":
        return "v.union(" + ", ".join(display_validator(v) for v in validator["value"]) + ")"
    return str(kind)


def strip_system_fields(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("_id", "_creationTime")}
