"""The dashboard's table filters (QUERIES §3): clauses, index reads and the FilterExpression.

`build_filter_expression` makes the JSON `paginatedTableDocuments` takes; `encode_filters` /
`decode_filters` are the dashboard's URL form of it. Re-exported by console.client.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping

from console import values

Order = Literal["asc", "desc"]

# QUERIES §3.3: how the dashboard sends `undefined` inside filters and patches.
UNDEFINED_PLACEHOLDER = (
    "__CONVEX_PLACEHOLDER_undefined_I23atX0jcndVbFgXoQZffsih7eAqktCyFjgUuAeNBtfr3ySOljPSPSEOPFgprk"
    "dBO3zXNiGEJxmJ5ZFPc5C5qKesG80QRPvlJe8vgSxAt9feLTwxTg4PHfVwUaTEJU67FDwldWmTxp1guMPwxQ2jOuhEr"
    "yTBf3mQ"
)
FILTER_OPS = ("eq", "neq", "lt", "lte", "gt", "gte", "type", "notype")
TYPE_NAMES = ("string", "boolean", "number", "bigint", "null", "id", "array", "object", "bytes", "unset")



@dataclass(frozen=True)
class FilterClause:
    """`field op value`. For type/notype, `value` is a type name (TYPE_NAMES)."""

    field: str
    op: str
    value: Any = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.op not in FILTER_OPS:
            raise ValueError(f"Unknown filter operator {self.op!r} (one of {', '.join(FILTER_OPS)})")
        if self.op in ("type", "notype") and self.value not in TYPE_NAMES:
            raise ValueError(f"Unknown type {self.value!r} (one of {', '.join(TYPE_NAMES)})")
        if not self.field:
            raise ValueError("A filter needs a field")

    def to_json(self) -> dict:
        value = self.value if self.op in ("type", "notype") else _filter_value(self.value)
        return {"field": self.field, "op": self.op, "value": value, "enabled": self.enabled}


@dataclass(frozen=True)
class IndexEq:
    value: Any
    enabled: bool = True

    def to_json(self) -> dict:
        return {"type": "indexEq", "enabled": self.enabled, "value": _filter_value(self.value)}


@dataclass(frozen=True)
class IndexRange:
    lower_op: Literal["gte", "gt"] | None = None
    lower: Any = None
    upper_op: Literal["lte", "lt"] | None = None
    upper: Any = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.lower_op not in (None, "gte", "gt") or self.upper_op not in (None, "lte", "lt"):
            raise ValueError("An index range takes lower gte/gt and upper lte/lt")

    def to_json(self) -> dict:
        data: dict[str, Any] = {"type": "indexRange", "enabled": self.enabled}
        if self.lower_op:
            data["lowerOp"] = self.lower_op
            data["lowerValue"] = _filter_value(self.lower)
        if self.upper_op:
            data["upperOp"] = self.upper_op
            data["upperValue"] = _filter_value(self.upper)
        return data


@dataclass(frozen=True)
class IndexFilter:
    """Read through a database index: one clause per index field, in order (range last)."""

    name: str
    clauses: tuple[IndexEq | IndexRange, ...] = ()

    def to_json(self) -> dict:
        return {"name": self.name, "clauses": [clause.to_json() for clause in self.clauses]}


@dataclass(frozen=True)
class SearchFilter:
    """Read through a search index (the deployment requires order "asc")."""

    name: str
    search: str
    clauses: tuple[tuple[str, Any], ...] = ()  # (filter field, value)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "search": self.search,
            "clauses": [{"field": f, "enabled": True, "value": _filter_value(v)} for f, v in self.clauses],
        }


def _filter_value(value: Any) -> Any:
    return UNDEFINED_PLACEHOLDER if value is values.UNDEFINED else values.encode(value)


def build_filter_expression(
    clauses: Iterable[FilterClause] = (),
    index: IndexFilter | SearchFilter | None = None,
    order: Order = "desc",
) -> dict | None:
    """The dashboard's FilterExpression, or None when it says nothing beyond the default."""
    if order not in ("asc", "desc"):
        raise ValueError(f"Order must be 'asc' or 'desc', not {order!r}")
    clause_list = [clause.to_json() for clause in clauses]
    if not clause_list and index is None and order == "desc":
        return None
    expression: dict[str, Any] = {"clauses": clause_list, "order": order}
    if index is not None:
        expression["index"] = index.to_json()
    return expression


def encode_filters(expression: Mapping[str, Any]) -> str:
    """js-base64 `encodeURI(JSON.stringify(expression))`: URL-safe base64, no padding."""
    text = json.dumps(expression, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode("utf-8")).rstrip(b"=").decode("ascii")


def decode_filters(text: str) -> Any:
    """js-base64 `decode`: either alphabet, padding optional."""
    cleaned = "".join(c for c in text.replace("-", "+").replace("_", "/") if c.isalnum() or c in "+/")
    return json.loads(base64.b64decode(cleaned + "=" * (-len(cleaned) % 4)).decode("utf-8"))
