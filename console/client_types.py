"""Typed results of the deployment client (pages, tables, indexes, schemas, specs, logs).

Re-exported by console.client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from console.client_errors import FunctionError



@dataclass
class FunctionResult:
    """One function call as the Functions screen shows it (status, value or error, logs)."""

    path: str
    kind: str
    status: Literal["success", "error"]
    value: Any = None
    error_message: str | None = None
    error_data: Any = None
    log_lines: list[Any] = field(default_factory=list)
    elapsed: float = 0.0  # seconds, measured by the client

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def raise_for_error(self) -> Any:
        if self.status == "error":
            raise FunctionError(self.error_message or "", self.error_data, log_lines=self.log_lines, path=self.path)
        return self.value


@dataclass
class FilterProblem:
    """An item `{filter: i, error}` paginatedTableDocuments returns for a bad filter (-1: index)."""

    filter: int
    error: str


@dataclass
class Page:
    """A PaginationResult: `items` decoded, cursors as given by the deployment."""

    items: list[Any]
    is_done: bool
    continue_cursor: str | None
    split_cursor: str | None = None
    page_status: str | None = None
    filter_problems: list[FilterProblem] = field(default_factory=list)

    @classmethod
    def from_result(cls, result: Any) -> "Page":
        if not isinstance(result, Mapping) or not isinstance(result.get("page", []), list):
            raise ValueError(f"Expected a PaginationResult, got {type(result).__name__}")
        items = list(result.get("page") or [])
        problems = [
            FilterProblem(int(item["filter"]), str(item["error"]))
            for item in items
            if isinstance(item, dict) and set(item) == {"filter", "error"}
        ]
        if problems and len(problems) == len(items):
            items = []
        else:
            problems = []
        return cls(
            items=items,
            is_done=bool(result.get("isDone")),
            continue_cursor=result.get("continueCursor"),
            split_cursor=result.get("splitCursor"),
            page_status=result.get("pageStatus"),
            filter_problems=problems,
        )


@dataclass
class TableInfo:
    name: str
    number: int | None = None
    count: int | None = None  # None when the deployment could not count it

    @property
    def is_system(self) -> bool:
        return self.name.startswith("_")


@dataclass
class IndexInfo:
    name: str
    fields: Any  # list[str] for database indexes, a dict for search / vector indexes
    kind: Literal["database", "search", "vector"]
    staged: bool = False
    backfill_state: str = "done"
    raw: dict = field(default_factory=dict, repr=False)


@dataclass
class Schemas:
    """`getSchemas`: each is the parsed `SchemaDefinition.export()` JSON, or None."""

    active: dict | None
    in_progress: dict | None

    def table(self, name: str) -> dict | None:
        for table in (self.active or {}).get("tables", []):
            if table.get("tableName") == name:
                return table
        return None


@dataclass
class FunctionSpec:
    """One entry of `_system/cli/modules:apiSpec`."""

    identifier: str | None
    function_type: str
    visibility: str | None = None
    args: dict | None = None
    returns: dict | None = None
    method: str | None = None  # HttpAction routes
    http_path: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "FunctionSpec":
        visibility = data.get("visibility")
        return cls(
            identifier=data.get("identifier"),
            function_type=str(data.get("functionType", "")),
            visibility=visibility.get("kind") if isinstance(visibility, dict) else visibility,
            args=data.get("args"),
            returns=data.get("returns"),
            method=data.get("method"),
            http_path=data.get("path"),
        )


@dataclass
class AdminKeyCheck:
    success: bool
    allowed_ops: list[str] = field(default_factory=list)
    is_read_only: bool = False


@dataclass
class LogBatch:
    entries: list[dict]
    new_cursor: Any
