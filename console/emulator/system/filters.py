"""The dashboard's `filters` of `_system/frontend/paginatedTableDocuments` (QUERIES §3).

Decoding (js-base64 `decode`), the zod-equivalent shape check, and applying the clauses to
a `ctx.db` query exactly as the system UDF does (`lib/filters.ts`).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from console import ids, values
from console.values import UNDEFINED

UNDEFINED_PLACEHOLDER = (
    "__CONVEX_PLACEHOLDER_undefined_I23atX0jcndVbFgXoQZffsih7eAqktCyFjgUuAeNBtfr3ySOljPSPSEOPFgprk"
    "dBO3zXNiGEJxmJ5ZFPc5C5qKesG80QRPvlJe8vgSxAt9feLTwxTg4PHfVwUaTEJU67FDwldWmTxp1guMPwxQ2jOuhEry"
    "TBf3mQ"
)
BUILTIN_OPS = ("eq", "neq", "gte", "lte", "gt", "lt")
TYPE_OPS = ("type", "notype")
LIST_OPS = ("anyOf", "noneOf")
TYPE_VALUES = ("string", "boolean", "number", "bigint", "null", "id", "array", "object", "bytes", "unset")


class FilterParseError(Exception):
    """The filters argument is not a FilterExpression (the UDF throws)."""


def encode_filters(expression: dict) -> str:
    """js-base64 `encodeURI(JSON.stringify(expression))`."""
    text = json.dumps(expression, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def decode_filters(text: str) -> Any:
    """js-base64 `decode`, then `JSON.parse`."""
    cleaned = "".join(c for c in text.replace("-", "+").replace("_", "/") if c.isalnum() or c in "+/")
    try:
        raw = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))
        return json.loads(raw.decode("utf-8", "replace"))
    except (binascii.Error, ValueError) as error:
        raise FilterParseError(f"Unexpected token in JSON: {error}") from None


def check_expression(parsed: Any) -> dict:
    """What `FilterExpressionSchema.parse` accepts; raises FilterParseError otherwise."""
    if not isinstance(parsed, dict):
        raise FilterParseError("Invalid filters: expected object")
    if parsed.get("op") not in (None, "and") and "op" in parsed:
        raise FilterParseError('Invalid filters: op: Invalid literal value, expected "and"')
    clauses = parsed.get("clauses")
    if not isinstance(clauses, list):
        raise FilterParseError("Invalid filters: clauses: Required array")
    for index, clause in enumerate(clauses):
        _check_clause(index, clause)
    if "order" in parsed and parsed["order"] not in ("asc", "desc"):
        raise FilterParseError('Invalid filters: order: expected "asc" | "desc"')
    return parsed


def _check_clause(index: int, clause: Any) -> None:
    where = f"Invalid filters: clauses.{index}"
    if not isinstance(clause, dict):
        raise FilterParseError(f"{where}: expected object")
    op = clause.get("op")
    if op not in BUILTIN_OPS + TYPE_OPS + LIST_OPS:
        raise FilterParseError(f"{where}.op: Invalid input")
    for key, kind in (("field", str), ("id", str), ("enabled", bool)):
        if key in clause and clause[key] is not None and not isinstance(clause[key], kind):
            raise FilterParseError(f"{where}.{key}: Expected {kind.__name__}")
    if "value" not in clause:
        return
    value = clause["value"]
    if op in TYPE_OPS and value not in TYPE_VALUES:
        raise FilterParseError(f"{where}.value: Invalid input")
    if op in LIST_OPS and not isinstance(value, list):
        raise FilterParseError(f"{where}.value: Expected array")


def _js_truthy(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0 and value == value  # 0 and NaN are falsy
    if isinstance(value, str):
        return value != ""
    return True


def _js_stringify(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def value_errors(expression: dict) -> list[dict]:
    """`findErrorsInFilters`: clauses whose truthy value is not convex JSON."""
    errors = []
    for index, clause in enumerate(expression["clauses"]):
        value = clause.get("value")
        if not _js_truthy(value):
            continue
        try:
            values.decode(value)
        except (ValueError, TypeError):
            errors.append({"filter": float(index), "error": f"Invalid value: {_js_stringify(value)}."})
    return errors


def json_to_convex_or_value(value: Any) -> Any:
    try:
        return values.decode(value)
    except (ValueError, TypeError):
        return value


def _maybe_undefined(value: Any, *, missing: bool = False) -> Any:
    if missing or value == UNDEFINED_PLACEHOLDER:
        return UNDEFINED
    return json_to_convex_or_value(value)


# --- indexes -----------------------------------------------------------------------------


def available_indexes(schema_json: str | None, table: str) -> list[dict]:
    defaults = [
        {"indexDescriptor": "by_creation_time", "fields": ["_creationTime"]},
        {"indexDescriptor": "by_id", "fields": ["_id"]},
    ]
    if not schema_json:
        return defaults
    schema = json.loads(schema_json)
    for entry in schema.get("tables", []):
        if entry.get("tableName") == table:
            return list(entry.get("indexes") or []) + list(entry.get("searchIndexes") or []) + defaults
    return defaults


def validate_index_filter(name: str, clauses: list, selected: dict | None) -> dict | None:
    if selected is None:
        return {"filter": -1.0, "error": f"Index {name} does not exist."}
    if "searchField" in selected:
        return {
            "filter": -1.0,
            "error": f"Index {name} is a search index, but the query is trying to use it as a database index.",
        }
    fields = selected["fields"]
    if len(clauses) > len(fields):
        return {
            "filter": -1.0,
            "error": f"Index {name} has {len(fields)} fields, but the query has {len(clauses)} clauses.",
        }
    finished = -1
    for index, clause in enumerate(clauses):
        if clause.get("enabled"):
            if finished != -1:
                return {
                    "filter": -1.0,
                    "error": "Invalid index filter selection: found an enabled clause after an disabled clause.",
                }
        elif finished == -1:
            finished = index
    for index in range(max(finished, 0)):
        if clauses[index].get("type") == "indexRange" and index != finished - 1:
            return {
                "filter": -1.0,
                "error": "Invalid index filter selection: found a range filter after a non-range filter.",
            }
    return None


def validate_search_filter(name: str, clauses: list, selected: dict | None, order: str) -> dict | None:
    if selected is None:
        return {"filter": -1.0, "error": f"Index {name} does not exist."}
    if "searchField" not in selected:
        return {
            "filter": -1.0,
            "error": f"Index {name} is not a search index, but the query is trying to use it as search index.",
        }
    if order != "asc":
        return {"filter": -1.0, "error": f"Trying to query search index `{name}` in descending order."}
    for index, clause in enumerate(clauses):
        if not clause.get("enabled"):
            continue
        field = clause.get("field")
        if field not in selected.get("filterFields", []):
            return {
                "filter": float(index),
                "error": (
                    f"Invalid index filter selection: found a filter for field `{field}` which is not "
                    f"part of the filter fields of the search index `{name}`."
                ),
            }
        if any(i != index and other.get("enabled") and other.get("field") == field for i, other in enumerate(clauses)):
            return {"filter": float(index), "error": f"Invalid filter: there are multiple filters for field `{field}`."}
    return None


def apply_index_clauses(q, clauses: list, selected: dict):
    """`applyIndexFilters` (enabled clauses form a prefix, checked before)."""
    enabled_count = sum(1 for clause in clauses if clause.get("enabled"))
    for i in range(enabled_count):
        clause, field = clauses[i], selected["fields"][i]
        if clause.get("type") == "indexEq":
            q = q.eq(field, _maybe_undefined(clause.get("value"), missing="value" not in clause))
            continue
        if i != enabled_count - 1:
            raise ValueError("Index range not supported")
        if clause.get("lowerOp"):
            bound = _maybe_undefined(clause.get("lowerValue"), missing="lowerValue" not in clause)
            q = getattr(q, clause["lowerOp"])(field, bound)
        if clause.get("upperOp"):
            bound = _maybe_undefined(clause.get("upperValue"), missing="upperValue" not in clause)
            q = getattr(q, clause["upperOp"])(field, bound)
    return q


def apply_search_clauses(q, search: str, clauses: list, selected: dict):
    q = q.search(selected["searchField"], search)
    for clause in clauses:
        if clause.get("enabled"):
            q = q.eq(clause["field"], _maybe_undefined(clause.get("value"), missing="value" not in clause))
    return q


# --- clauses ----------------------------------------------------------------------------


def builtin_expression(q, clauses: list):
    """`applyBuiltinFilters`: the AND of every clause that names a field."""
    valid = [clause for clause in clauses if clause.get("field") is not None]
    if not valid:
        return True
    parts = []
    for clause in valid:
        if "value" not in clause:
            raise ValueError("Unexpected type of undefined")
        value = values.decode(clause["value"])
        field = q.field(clause["field"])
        op = clause["op"]
        if op in LIST_OPS:
            if not clause["value"]:
                parts.append(True)
                continue
            members = [UNDEFINED if v == UNDEFINED_PLACEHOLDER else json_to_convex_or_value(v) for v in clause["value"]]
            if op == "anyOf":
                parts.append(q.or_(*[q.eq(field, member) for member in members]))
            else:
                parts.append(q.and_(*[q.neq(field, member) for member in members]))
            continue
        parts.append(getattr(q, op)(field, UNDEFINED if value == UNDEFINED_PLACEHOLDER else value))
    return q.and_(*parts)


def is_type(value: Any, type_value: str, *, present: bool = True) -> bool:
    if type_value == "unset":
        return not present
    if not present:
        return False
    if type_value == "null":
        return value is None
    if type_value == "array":
        return isinstance(value, list)
    if type_value == "id":
        return isinstance(value, str) and ids.is_id(value)
    if type_value == "bytes":
        return isinstance(value, bytes)
    if type_value == "object":
        return isinstance(value, dict)
    if type_value == "boolean":
        return isinstance(value, bool)
    if type_value == "bigint":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_value == "number":
        return isinstance(value, float)
    if type_value == "string":
        return isinstance(value, str)
    return False


def apply_type_clauses(page: list, clauses: list) -> list:
    valid = [c for c in clauses if c.get("field") is not None and c.get("enabled") is not False]

    def keep(doc: dict) -> bool:
        for clause in valid:
            field = clause["field"]
            matches = is_type(doc.get(field), clause.get("value"), present=field in doc)
            if (clause["op"] == "type" and not matches) or (clause["op"] == "notype" and matches):
                return False
        return True

    return [doc for doc in page if keep(doc)]
