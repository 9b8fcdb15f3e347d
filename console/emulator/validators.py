"""The `v` validator builders, mirroring `convex/values` (QUERIES §4.3, PROTOCOL §3.5).

Each validator exports its ValidatorJSON with `.json()`. Checking a value against a
validator is the engine's job (`engine.validate.validate_value`); this module only builds.

Python value mapping (internals §1): `v.number()` is a float64 (`float`), `v.int64()` is
an int64 (`int`).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from console import values


class Validator:
    """One validator. `is_optional` matters only as an object field (`v.optional(...)`)."""

    kind = "any"

    def __init__(self) -> None:
        self.is_optional = False

    def json(self) -> dict:
        return {"type": self.kind}

    def as_optional(self) -> "Validator":
        twin = copy.copy(self)
        twin.is_optional = True
        return twin

    def __repr__(self) -> str:
        prefix = "v.optional(" if self.is_optional else ""
        suffix = ")" if self.is_optional else ""
        return f"{prefix}{json.dumps(self.json(), sort_keys=True)}{suffix}"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Validator)
            and self.json() == other.json()
            and self.is_optional == other.is_optional
        )

    def __hash__(self) -> int:
        return hash(json.dumps(self.json(), sort_keys=True))


class _Simple(Validator):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind


class VId(Validator):
    kind = "id"

    def __init__(self, table_name: str) -> None:
        super().__init__()
        if not isinstance(table_name, str) or not table_name:
            raise TypeError("v.id(table_name) needs a table name string")
        self.table_name = table_name

    def json(self) -> dict:
        return {"type": "id", "tableName": self.table_name}


class VLiteral(Validator):
    kind = "literal"

    def __init__(self, value: Any) -> None:
        super().__init__()
        if not isinstance(value, (str, int, float, bool)):
            raise TypeError("v.literal(value) must be a string, number, or boolean")
        self.value = value

    def json(self) -> dict:
        return {"type": "literal", "value": values.encode(self.value)}


class VArray(Validator):
    kind = "array"

    def __init__(self, element: Validator) -> None:
        super().__init__()
        self.element = _require(element, "v.array()")

    def json(self) -> dict:
        return {"type": "array", "value": self.element.json()}


class VObject(Validator):
    kind = "object"

    def __init__(self, fields: dict[str, Validator]) -> None:
        super().__init__()
        if not isinstance(fields, dict):
            raise TypeError("v.object(fields) needs a dict of field name -> validator")
        for name, validator in fields.items():
            values.check_field_name(name)
            _require(validator, f'v.object() field "{name}"')
        self.fields = dict(fields)

    def json(self) -> dict:
        return {
            "type": "object",
            "value": {
                name: {"fieldType": field.json(), "optional": field.is_optional}
                for name, field in self.fields.items()
            },
        }


class VUnion(Validator):
    kind = "union"

    def __init__(self, members: tuple[Validator, ...]) -> None:
        super().__init__()
        self.members = tuple(_require(m, "v.union()") for m in members)

    def json(self) -> dict:
        return {"type": "union", "value": [m.json() for m in self.members]}


class VRecord(Validator):
    kind = "record"

    def __init__(self, keys: Validator, values_: Validator) -> None:
        super().__init__()
        _require(keys, "v.record() keys")
        _require(values_, "v.record() values")
        if values_.is_optional:
            raise TypeError("Record validator cannot have optional values")
        if not _is_record_key(keys):
            raise TypeError("v.record() keys must be v.string(), v.id(...) or a union of them")
        self.keys = keys
        self.values = values_

    def json(self) -> dict:
        return {
            "type": "record",
            "keys": self.keys.json(),
            "values": {"fieldType": self.values.json(), "optional": False},
        }


def _is_record_key(validator: Validator) -> bool:
    if validator.kind in ("string", "id"):
        return True
    if isinstance(validator, VUnion):
        return all(_is_record_key(m) for m in validator.members)
    return False


def _require(validator: Any, where: str) -> Validator:
    if not isinstance(validator, Validator):
        raise TypeError(
            f"A validator is undefined or not a validator in {where}: {validator!r}. "
            "Use the builders of `v` (for example v.string())."
        )
    return validator


class _V:
    """The `v` namespace."""

    def string(self) -> Validator:
        return _Simple("string")

    def number(self) -> Validator:
        """A float64 (`float` in Python)."""
        return _Simple("number")

    float64 = number

    def int64(self) -> Validator:
        """An int64 (`int` in Python)."""
        return _Simple("bigint")

    bigint = int64

    def boolean(self) -> Validator:
        return _Simple("boolean")

    def null(self) -> Validator:
        return _Simple("null")

    def bytes(self) -> Validator:
        return _Simple("bytes")

    def any(self) -> Validator:
        return _Simple("any")

    def id(self, table_name: str) -> Validator:
        return VId(table_name)

    def literal(self, value: Any) -> Validator:
        return VLiteral(value)

    def array(self, element: Validator) -> Validator:
        return VArray(element)

    def object(self, fields: dict[str, Validator]) -> Validator:
        return VObject(fields)

    def union(self, *members: Validator) -> Validator:
        return VUnion(members)

    def record(self, keys: Validator, values_: Validator) -> Validator:
        return VRecord(keys, values_)

    def optional(self, validator: Validator) -> Validator:
        return _require(validator, "v.optional()").as_optional()


v = _V()

pagination_opts_validator = v.object(
    {
        "numItems": v.number(),
        "cursor": v.union(v.string(), v.null()),
        "endCursor": v.optional(v.union(v.string(), v.null())),
        "id": v.optional(v.number()),
        "maximumRowsRead": v.optional(v.number()),
        "maximumBytesRead": v.optional(v.number()),
    }
)


def pagination_result_validator(item: Validator) -> Validator:
    """The validator of what `.paginate()` returns, with `item` for each page element."""
    return v.object(
        {
            "page": v.array(item),
            "continueCursor": v.string(),
            "isDone": v.boolean(),
            "splitCursor": v.optional(v.union(v.string(), v.null())),
            "pageStatus": v.optional(
                v.union(v.literal("SplitRecommended"), v.literal("SplitRequired"), v.null())
            ),
        }
    )


def as_object_validator(spec: Any) -> Validator | None:
    """`args=`/`returns=` as given: None, a validator, or a dict of field validators."""
    if spec is None:
        return None
    if isinstance(spec, dict):
        return v.object(spec)
    return _require(spec, "args/returns")


def export_args(spec: Any) -> dict:
    """ValidatorJSON of an `args=` spec: `{"type": "any"}` when absent (as exportArgs())."""
    validator = as_object_validator(spec)
    return {"type": "any"} if validator is None else validator.json()


def export_returns(spec: Any) -> dict | None:
    """ValidatorJSON of a `returns=` spec, or None when absent (as exportReturns())."""
    validator = as_object_validator(spec)
    return None if validator is None else validator.json()
