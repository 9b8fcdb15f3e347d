"""Rendering Convex values for people: compact grid cells, typed pretty JSON, an editable
JSON-ish text format (int64 as `123n`), and schema validators written like a schema.ts.

Pure functions (Rich for styled text, no Textual), so they are easy to test.
"""

from __future__ import annotations

import base64
import json
import math
import re
from datetime import datetime
from typing import Any

from rich.text import Text

from console import ids, values

ID_STYLE = "bold cyan"
INT_STYLE = "magenta"
NUM_STYLE = "bright_magenta"
STR_STYLE = "green"
KEY_STYLE = "bold"
BYTES_STYLE = "yellow"
NULL_STYLE = "dim italic"

_BIGINT_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|(-?\d+)n\b', re.DOTALL)


# ---------------------------------------------------------------------------
# Time and numbers


def human_time(ms: Any) -> str:
    """`_creationTime` (float ms since the epoch) as local `YYYY-MM-DD HH:MM:SS`."""
    if not isinstance(ms, (int, float)) or isinstance(ms, bool) or not math.isfinite(ms):
        return str(ms)
    try:
        return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(ms)


def format_count(number: int | None) -> str:
    return "?" if number is None else f"{number:,}"


def format_float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == int(value) and abs(value) < 1e16:
        return str(int(value)) if not (value == 0 and math.copysign(1, value) < 0) else "-0"
    return repr(value)


def short_id(text: str) -> str:
    """An id shortened for a grid cell: first 6 and last 4 characters."""
    return text if len(text) <= 12 else f"{text[:6]}…{text[-4:]}"


# ---------------------------------------------------------------------------
# Compact cell values


def compact(value: Any, limit: int = 40) -> str:
    """One-line rendering for a grid cell; ids shortened, long text cut with an ellipsis."""
    text = _compact(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _compact(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}n"
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, str):
        return short_id(value) if ids.is_id(value) else value.replace("\n", "⏎")
    if isinstance(value, bytes):
        return f"bytes({len(value)})"
    if isinstance(value, list):
        return "[" + ", ".join(_compact(item) for item in value[:8]) + (", …]" if len(value) > 8 else "]")
    if isinstance(value, dict):
        inner = ", ".join(f"{key}: {_compact(item)}" for key, item in list(value.items())[:6])
        return "{" + inner + (", …}" if len(value) > 6 else "}")
    return str(value)


def cell(value: Any, limit: int = 40) -> Text:
    """A styled grid cell."""
    text = compact(value, limit)
    if value is None:
        return Text(text, style=NULL_STYLE)
    if isinstance(value, str) and ids.is_id(value):
        return Text(text, style=ID_STYLE)
    if isinstance(value, int) and not isinstance(value, bool):
        return Text(text, style=INT_STYLE)
    if isinstance(value, bytes):
        return Text(text, style=BYTES_STYLE)
    return Text(text)


# ---------------------------------------------------------------------------
# Pretty, typed rendering (detail pane)


def pretty(value: Any, *, indent: int = 0, table_of_id=None) -> Text:
    """Multi-line JSON-like text with Convex types: `123n`, `bytes(…)`, ids marked `→ table`."""
    out = Text()
    _pretty_into(out, value, indent, table_of_id)
    return out


def _pretty_into(out: Text, value: Any, indent: int, table_of_id) -> None:
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        out.append("{\n")
        for position, (key, item) in enumerate(value.items()):
            out.append(pad + "  ")
            out.append(json.dumps(key), style=KEY_STYLE)
            out.append(": ")
            _pretty_into(out, item, indent + 1, table_of_id)
            out.append(",\n" if position < len(value) - 1 else "\n")
        out.append(pad + "}")
    elif isinstance(value, list):
        if not value:
            out.append("[]")
            return
        out.append("[\n")
        for position, item in enumerate(value):
            out.append(pad + "  ")
            _pretty_into(out, item, indent + 1, table_of_id)
            out.append(",\n" if position < len(value) - 1 else "\n")
        out.append(pad + "]")
    else:
        out.append_text(scalar(value, table_of_id))


def scalar(value: Any, table_of_id=None) -> Text:
    if value is None:
        return Text("null", style=NULL_STYLE)
    if isinstance(value, bool):
        return Text("true" if value else "false", style=NUM_STYLE)
    if isinstance(value, int):
        return Text(f"{value}n", style=INT_STYLE)
    if isinstance(value, float):
        return Text(format_float(value), style=NUM_STYLE)
    if isinstance(value, bytes):
        encoded = base64.b64encode(value).decode("ascii")
        shown = encoded if len(encoded) <= 60 else encoded[:57] + "…"
        return Text(f'bytes({len(value)}) "{shown}"', style=BYTES_STYLE)
    if isinstance(value, str):
        if ids.is_id(value):
            text = Text(json.dumps(value), style=ID_STYLE)
            table = table_of_id(value) if table_of_id else None
            text.append(f"  → Id<\"{table}\">" if table else "  → Id", style="dim cyan")
            return text
        return Text(json.dumps(value, ensure_ascii=False), style=STR_STYLE)
    return Text(repr(value))


# ---------------------------------------------------------------------------
# Editable JSON-ish text: JSON plus `123n` for int64 and {"$bytes": ...} for bytes.


def to_jsonish(value: Any, indent: int | None = 2) -> str:
    """Text a developer can edit and `parse_jsonish` reads back to the same value."""
    marked = _mark_ints(values.encode(value))
    text = json.dumps(marked, indent=indent, ensure_ascii=False)
    return re.sub(r'"\\u0000INT(-?\d+)\\u0000"', r"\1n", text)


def _mark_ints(encoded: Any) -> Any:
    if isinstance(encoded, list):
        return [_mark_ints(item) for item in encoded]
    if isinstance(encoded, dict):
        if len(encoded) == 1 and "$integer" in encoded:
            number = int.from_bytes(base64.b64decode(encoded["$integer"]), "little", signed=True)
            return f"\0INT{number}\0"
        return {key: _mark_ints(item) for key, item in encoded.items()}
    return encoded


def parse_jsonish(text: str, *, allow_undefined: bool = False) -> Any:
    """Parse JSON with `123n` int64 literals (and encoded `$integer`/`$bytes`/`$float` objects).

    Plain JSON numbers are float64, as in Convex. Raises ValueError with a readable message.
    """

    def replace(match: re.Match) -> str:
        if match.group(1) is None:
            return match.group(0)
        number = int(match.group(1))
        if not values.INT64_MIN <= number <= values.INT64_MAX:
            raise ValueError(f"{number}n does not fit in an int64")
        encoded = base64.b64encode(number.to_bytes(8, "little", signed=True)).decode()
        return json.dumps({"$integer": encoded})

    try:
        data = json.loads(_BIGINT_TOKEN.sub(replace, text))
    except json.JSONDecodeError as error:
        raise ValueError(f"Invalid JSON at line {error.lineno} column {error.colno}: {error.msg}") from None
    return values.decode(data, allow_undefined=allow_undefined)


def parse_filter_value(text: str) -> Any:
    """A filter value typed in a box: JSON-ish, and a bare word that is not JSON is a string."""
    stripped = text.strip()
    if not stripped:
        return ""
    try:
        return parse_jsonish(stripped)
    except ValueError:
        if stripped[0] in "[{\"":
            raise
        return stripped


# ---------------------------------------------------------------------------
# Schema rendering (ValidatorJSON -> `v.*` source)


def validator_source(validator: dict | None, indent: int = 0) -> str:
    if not validator:
        return "v.any()"
    kind = validator.get("type")
    simple = {
        "null": "v.null()", "number": "v.number()", "bigint": "v.int64()", "boolean": "v.boolean()",
        "string": "v.string()", "bytes": "v.bytes()", "any": "v.any()",
    }
    if kind in simple:
        return simple[kind]
    if kind == "literal":
        return f"v.literal({_literal_source(validator.get('value'))})"
    if kind == "id":
        return f'v.id("{validator.get("tableName")}")'
    if kind == "array":
        return f"v.array({validator_source(validator.get('value'), indent)})"
    if kind == "record":
        values_type = validator.get("values", {})
        inner = values_type.get("fieldType", values_type) if isinstance(values_type, dict) else values_type
        return f"v.record({validator_source(validator.get('keys'), indent)}, {validator_source(inner, indent)})"
    if kind == "union":
        members = [validator_source(member, indent) for member in validator.get("value", [])]
        return f"v.union({', '.join(members)})"
    if kind == "object":
        return f"v.object({object_source(validator.get('value', {}), indent)})"
    return f"v.{kind}()"


def _literal_source(encoded: Any) -> str:
    try:
        value = values.decode(encoded)
    except ValueError:
        return json.dumps(encoded)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value}n"
    if isinstance(value, float):
        return format_float(value)
    return json.dumps(value)


def object_source(fields: dict, indent: int = 0) -> str:
    if not fields:
        return "{}"
    pad = "  " * (indent + 1)
    lines = []
    for name, spec in fields.items():
        source = validator_source(spec.get("fieldType"), indent + 1)
        if spec.get("optional"):
            source = f"v.optional({source})"
        key = name if re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", name) else json.dumps(name)
        lines.append(f"{pad}{key}: {source},")
    return "{\n" + "\n".join(lines) + "\n" + "  " * indent + "}"


def table_source(table: dict) -> str:
    """One entry of `SchemaDefinition.export()` written as `defineTable({...}).index(...)`."""
    document_type = table.get("documentType")
    if document_type and document_type.get("type") == "object":
        body = object_source(document_type.get("value", {}))
    else:
        body = validator_source(document_type)
    source = f"defineTable({body})"
    for index in table.get("indexes", []) or []:
        fields = ", ".join(json.dumps(field) for field in index.get("fields", []))
        source += f'\n  .index("{index.get("indexDescriptor")}", [{fields}])'
    for index in table.get("searchIndexes", []) or []:
        options = {"searchField": index.get("searchField"), "filterFields": index.get("filterFields", [])}
        source += f'\n  .searchIndex("{index.get("indexDescriptor")}", {json.dumps(options)})'
    for index in table.get("vectorIndexes", []) or []:
        options = {
            "vectorField": index.get("vectorField"),
            "dimensions": index.get("dimensions"),
            "filterFields": index.get("filterFields", []),
        }
        source += f'\n  .vectorIndex("{index.get("indexDescriptor")}", {json.dumps(options)})'
    return source


def index_fields_text(fields: Any) -> str:
    if isinstance(fields, list):
        return ", ".join(str(field) for field in fields)
    if isinstance(fields, dict):
        if "searchField" in fields:
            return f"search {fields['searchField']} (filter {', '.join(fields.get('filterFields', []))})"
        if "vectorField" in fields:
            return f"vector {fields['vectorField']} dim {fields.get('dimensions')}"
    return json.dumps(fields)
