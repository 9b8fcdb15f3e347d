"""What the data screen asks for: filter clauses (ANDed), an index to read through, and the
order; turned into the client's dashboard filter types (QUERIES §3) and kept as plain JSON
in the per-profile state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from console import values
from console.client import (FILTER_OPS, TYPE_NAMES, FilterClause, IndexEq, IndexFilter, IndexRange,
                            build_filter_expression, encode_filters)

OPERATORS = FILTER_OPS
TYPE_OPS = ("type", "notype")
OP_SYMBOLS = {"eq": "=", "neq": "≠", "lt": "<", "lte": "≤", "gt": ">", "gte": "≥", "type": "is", "notype": "is not"}
DEFAULT_INDEX = "by_creation_time"

__all__ = ["FilterClause", "QuerySpec", "OPERATORS", "TYPE_NAMES", "TYPE_OPS", "describe_clause"]


def describe_clause(clause: FilterClause) -> str:
    from screens.formatting import compact

    shown = clause.value if clause.op in TYPE_OPS else compact(clause.value, 30)
    return f"{clause.field} {OP_SYMBOLS.get(clause.op, clause.op)} {shown}"


def clause_to_state(clause: FilterClause) -> dict:
    value = clause.value if clause.op in TYPE_OPS else values.encode(clause.value)
    return {"field": clause.field, "op": clause.op, "value": value}


def clause_from_state(data: dict) -> FilterClause:
    op = data["op"]
    value = data.get("value")
    return FilterClause(data["field"], op, value if op in TYPE_OPS else values.decode(value))


@dataclass(frozen=True)
class QuerySpec:
    clauses: tuple[FilterClause, ...] = ()
    index: str | None = None  # None: the default order (by creation time)
    index_fields: tuple[str, ...] = ()
    order: str = "asc"

    @property
    def filtered(self) -> bool:
        return bool(self.clauses)

    def index_filter(self) -> IndexFilter | None:
        """Read through a user index with every clause disabled: it only sets the sort."""
        if not self.index or self.index == DEFAULT_INDEX:
            return None
        clauses = tuple(
            IndexRange("gte", 0.0, enabled=False) if field == "_creationTime" else IndexEq(None, enabled=False)
            for field in self.index_fields
        )
        return IndexFilter(self.index, clauses)

    def describe(self) -> str:
        parts = [describe_clause(clause) for clause in self.clauses]
        parts.append(f"index {self.index or DEFAULT_INDEX} {self.order}")
        return " · ".join(parts)

    def page_query(self, table: str, order: str, cursor: str | None, num_items: int) -> tuple[str, dict]:
        """The query (path, args) that loads one page, exactly as the data screen's HTTP load
        sends it: what a live subscription to that page must use."""
        pagination = {"numItems": float(num_items), "cursor": cursor}
        if table.startswith("_") and not self.clauses and not self.index:
            return "_system/cli/tableData", {"table": table, "order": order, "paginationOpts": pagination}
        expression = build_filter_expression(self.clauses, self.index_filter(), order)  # type: ignore[arg-type]
        filters = encode_filters(expression) if expression is not None else None
        return "_system/frontend/paginatedTableDocuments", {"paginationOpts": pagination, "table": table,
                                                            "filters": filters}

    def to_state(self) -> dict:
        return {
            "clauses": [clause_to_state(clause) for clause in self.clauses],
            "index": self.index,
            "index_fields": list(self.index_fields),
            "order": self.order,
        }

    @classmethod
    def from_state(cls, data: Any) -> "QuerySpec":
        if not isinstance(data, dict):
            return cls()
        try:
            return cls(
                clauses=tuple(clause_from_state(item) for item in data.get("clauses", [])),
                index=data.get("index"),
                index_fields=tuple(data.get("index_fields", [])),
                order=data.get("order") if data.get("order") in ("asc", "desc") else "asc",
            )
        except (KeyError, ValueError, TypeError):
            return cls()
