"""Argument help from a function's validators (PROTOCOL §3.5 ValidatorJSON), headless.

- `type_text(validator)`: a readable TypeScript-like type, e.g. `{ id: Id<"posts">; tag?: string | null }`.
- `skeleton(validator)`: a value to start editing from: required fields only, placeholders by
  type; an id gets a placeholder string that `validate` refuses until it is replaced.
- `validate(validator, value, table_of_id=None)`: local check before sending; raises
  `ArgsValidationError` naming the offending path (`.author.name`, `.tags[2]`).
- `pagination_field(validator)`: the `paginationOpts` argument name, if the function pages.

Values are Python Convex values (console/values.py): float is a number, int is a bigint.
The emulator's engine/validate.py mirrors the backend's exact messages; these messages are for
people typing arguments, so they say what to type instead.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Callable, Mapping

from console import ids, values

ANY: dict = {"type": "any"}
_IDENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_TABLE_ALIASES = {"_storage": "_file_storage", "_scheduled_functions": "_scheduled_jobs"}
PAGINATION_NUM_ITEMS = 10.0

TableLookup = Callable[[int], "str | None"]


class ArgsValidationError(ValueError):
    """`path` is where the value went wrong ("" is the whole value)."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path or 'args'}: {message}")
        self.path = path
        self.message = message


# ---------------------------------------------------------------------------
# Readable types


def type_text(validator: Mapping[str, Any] | None, *, width: int = 72, indent: int = 0) -> str:
    """The validator as a TypeScript type; objects wider than `width` go on several lines."""
    one_line = _type(validator, None, 0)
    if len(one_line) + indent * 2 <= width:
        return one_line
    return _type(validator, width, indent)


def _type(validator: Mapping[str, Any] | None, width: int | None, indent: int) -> str:
    if not validator:
        return "any"
    kind = validator.get("type")
    simple = {"null": "null", "number": "number", "float64": "number", "bigint": "bigint", "int64": "bigint",
              "boolean": "boolean", "string": "string", "bytes": "ArrayBuffer", "any": "any"}
    if kind in simple:
        return simple[kind]
    if kind == "literal":
        return literal_text(validator.get("value"))
    if kind == "id":
        return f'Id<"{validator.get("tableName")}">'
    if kind == "array":
        inner = _type(validator.get("value"), width, indent)
        return f"({inner})[]" if " | " in inner and not inner.startswith("{") else f"{inner}[]"
    if kind == "record":
        field = validator.get("values") or {}
        inner = field.get("fieldType", field) if isinstance(field, Mapping) else field
        return f"Record<{_type(validator.get('keys'), width, indent)}, {_type(inner, width, indent)}>"
    if kind == "union":
        return " | ".join(_type(member, width, indent) for member in validator.get("value") or [])
    if kind == "object":
        return _object_type(validator.get("value") or {}, width, indent)
    return str(kind)


def _object_type(fields: Mapping[str, Any], width: int | None, indent: int) -> str:
    if not fields:
        return "{}"
    parts = []
    for name, spec in fields.items():
        key = name if _IDENT.match(name) else json.dumps(name)
        mark = "?" if spec.get("optional") else ""
        parts.append((f"{key}{mark}", spec.get("fieldType")))
    flat = "{ " + "; ".join(f"{key}: {_type(v, None, 0)}" for key, v in parts) + " }"
    if width is None or len(flat) + indent * 2 <= width:
        return flat
    pad = "  " * (indent + 1)
    lines = [f"{pad}{key}: {type_text(v, width=width, indent=indent + 1)};" for key, v in parts]
    return "{\n" + "\n".join(lines) + "\n" + "  " * indent + "}"


def literal_text(encoded: Any) -> str:
    try:
        value = values.decode(encoded)
    except ValueError:
        return json.dumps(encoded)
    return value_text(value)


def value_text(value: Any, limit: int = 60) -> str:
    """A short one-line rendering of a value for messages (`12n`, `"abc"`, `{a: 1}`)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}n"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, bytes):
        text = f"bytes({len(value)})"
    elif isinstance(value, list):
        text = "[" + ", ".join(value_text(item, limit) for item in value[:6]) + (", …]" if len(value) > 6 else "]")
    elif isinstance(value, dict):
        inner = ", ".join(f"{k}: {value_text(v, limit)}" for k, v in list(value.items())[:6])
        text = "{" + inner + (", …}" if len(value) > 6 else "}")
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def kind_text(value: Any) -> str:
    """The Convex type of a value as a TypeScript reader would name it."""
    name = values.type_name(value)
    return "ArrayBuffer" if name == "bytes" else name


# ---------------------------------------------------------------------------
# Skeletons


def id_placeholder(table: str) -> str:
    return f"<Id<{table}>>"


def is_id_placeholder(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("<Id<") and value.endswith(">>")


def skeleton(validator: Mapping[str, Any] | None, *, id_value: Callable[[str], str] | None = None,
             include_optional: bool = False) -> Any:
    """A value shaped like the validator: required fields only (unless `include_optional`),
    "" / 0 / 0n / false / null / [] / {} placeholders, literals as themselves, the null member of
    a union when there is one. Ids are `id_value(table)`, by default a placeholder to replace."""
    make_id = id_value or id_placeholder
    return _skeleton(validator or ANY, make_id, include_optional, "")


def _skeleton(validator: Mapping[str, Any], make_id, include_optional: bool, name: str) -> Any:
    kind = validator.get("type")
    placeholders = {"null": None, "number": 0.0, "float64": 0.0, "bigint": 0, "int64": 0, "boolean": False,
                    "string": "", "bytes": b"", "any": None}
    if kind in placeholders:
        return placeholders[kind]
    if kind == "literal":
        return values.decode(validator.get("value"))
    if kind == "id":
        return make_id(str(validator.get("tableName")))
    if kind == "array":
        return []
    if kind == "record":
        return {}
    if kind == "union":
        members = validator.get("value") or []
        for member in members:
            if member.get("type") == "null":
                return None
        return _skeleton(members[0], make_id, include_optional, name) if members else None
    if kind == "object":
        if name == "paginationOpts" and is_pagination_opts(validator):
            return {"numItems": PAGINATION_NUM_ITEMS, "cursor": None}
        out = {}
        for field, spec in (validator.get("value") or {}).items():
            if spec.get("optional") and not include_optional:
                continue
            out[field] = _skeleton(spec.get("fieldType") or ANY, make_id, include_optional, field)
        return out
    return None


def is_pagination_opts(validator: Mapping[str, Any] | None) -> bool:
    if not validator or validator.get("type") != "object":
        return False
    fields = validator.get("value") or {}
    return "numItems" in fields and "cursor" in fields


def pagination_field(args_validator: Mapping[str, Any] | None) -> str | None:
    """`paginationOpts` when the args take paginationOptsValidator (PROTOCOL §3 general)."""
    if not args_validator or args_validator.get("type") != "object":
        return None
    spec = (args_validator.get("value") or {}).get("paginationOpts")
    if spec and is_pagination_opts(spec.get("fieldType")):
        return "paginationOpts"
    return None


def flat_fields(args_validator: Mapping[str, Any] | None) -> list[tuple[str, dict, bool]] | None:
    """(name, validator, optional) per field when the args are an object of scalar-ish fields
    (what a one-Input-per-field form can edit); None otherwise."""
    if not args_validator or args_validator.get("type") != "object":
        return None
    out = []
    for name, spec in (args_validator.get("value") or {}).items():
        field = spec.get("fieldType") or ANY
        if not _is_scalar(field):
            return None
        out.append((name, field, bool(spec.get("optional"))))
    return out


def _is_scalar(validator: Mapping[str, Any]) -> bool:
    kind = validator.get("type")
    if kind == "union":
        return all(_is_scalar(member) for member in validator.get("value") or [])
    return kind in ("null", "number", "float64", "bigint", "int64", "boolean", "string", "id", "literal", "any", "bytes")


# ---------------------------------------------------------------------------
# Local validation


def validate(validator: Mapping[str, Any] | None, value: Any, *, table_of_id: TableLookup | None = None) -> None:
    """Raise ArgsValidationError (path + what to type) unless `value` matches."""
    try:
        values.check_value(value)
    except ValueError as error:
        raise ArgsValidationError("", str(error)) from None
    _check(validator or ANY, value, "", table_of_id)


def validation_error(validator, value, *, table_of_id: TableLookup | None = None) -> ArgsValidationError | None:
    try:
        validate(validator, value, table_of_id=table_of_id)
    except ArgsValidationError as error:
        return error
    return None


def _mismatch(validator: Mapping[str, Any], value: Any, path: str) -> ArgsValidationError:
    expected = type_text(validator, width=10_000)
    hint = ""
    kind = validator.get("type")
    if kind in ("bigint", "int64") and isinstance(value, float) and value.is_integer():
        hint = f" (an int64 is written {int(value)}n)"
    elif kind in ("number", "float64") and isinstance(value, int) and not isinstance(value, bool):
        hint = f" (a number is written {value}, without n)"
    return ArgsValidationError(path, f"expected {expected}, got {value_text(value)} ({kind_text(value)}){hint}")


_SIMPLE = {
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, float),
    "float64": lambda v: isinstance(v, float),
    "bigint": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "int64": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "bytes": lambda v: isinstance(v, bytes),
    "any": lambda v: True,
}


def _check(validator: Mapping[str, Any], value: Any, path: str, lookup: TableLookup | None) -> None:
    kind = validator.get("type")
    if kind in _SIMPLE:
        if not _SIMPLE[kind](value):
            raise _mismatch(validator, value, path)
    elif kind == "literal":
        expected = values.decode(validator.get("value"))
        if type(value) is not type(expected) or values.compare(value, expected) != 0:
            raise _mismatch(validator, value, path)
    elif kind == "id":
        _check_id(validator, value, path, lookup)
    elif kind == "array":
        if not isinstance(value, list):
            raise _mismatch(validator, value, path)
        for index, item in enumerate(value):
            _check(validator.get("value") or ANY, item, f"{path}[{index}]", lookup)
    elif kind == "record":
        _check_record(validator, value, path, lookup)
    elif kind == "object":
        _check_object(validator, value, path, lookup)
    elif kind == "union":
        _check_union(validator, value, path, lookup)
    else:
        raise ArgsValidationError(path, f"unknown validator type {kind!r}")


def _check_id(validator: Mapping[str, Any], value: Any, path: str, lookup: TableLookup | None) -> None:
    table = str(validator.get("tableName"))
    if is_id_placeholder(value):
        raise ArgsValidationError(path, f'replace the placeholder {value} with an Id<"{table}">')
    if not isinstance(value, str):
        raise _mismatch(validator, value, path)
    try:
        number, _ = ids.decode_id(value)
    except ids.InvalidId:
        raise ArgsValidationError(path, f'{value_text(value)} is not a document id (expected Id<"{table}">)') from None
    found = lookup(number) if lookup else None
    if found is not None and found != table and _TABLE_ALIASES.get(table) != found:
        raise ArgsValidationError(path, f'this id is from table "{found}", expected Id<"{table}">')


def _check_record(validator: Mapping[str, Any], value: Any, path: str, lookup: TableLookup | None) -> None:
    if not isinstance(value, dict):
        raise _mismatch(validator, value, path)
    field = validator.get("values") or {}
    inner = field.get("fieldType", field) if isinstance(field, Mapping) else ANY
    for key, item in value.items():
        _check(validator.get("keys") or {"type": "string"}, key, f"{path}.keys()", lookup)
        _check(inner or ANY, item, _field_path(path, key), lookup)


def _field_path(path: str, name: str) -> str:
    return f"{path}.{name}" if _IDENT.match(name) else f"{path}[{json.dumps(name)}]"


def _check_object(validator: Mapping[str, Any], value: Any, path: str, lookup: TableLookup | None) -> None:
    if not isinstance(value, dict):
        raise _mismatch(validator, value, path)
    fields = validator.get("value") or {}
    for name, spec in fields.items():
        if name in value and value[name] is not values.UNDEFINED:
            _check(spec.get("fieldType") or ANY, value[name], _field_path(path, name), lookup)
        elif not spec.get("optional"):
            expected = type_text(spec.get("fieldType"), width=10_000)
            raise ArgsValidationError(_field_path(path, name), f"missing required field `{name}` ({expected})")
    for name in value:
        if name not in fields:
            known = ", ".join(fields) or "none"
            raise ArgsValidationError(_field_path(path, name), f"unexpected field `{name}` (fields: {known})")


def _check_union(validator: Mapping[str, Any], value: Any, path: str, lookup: TableLookup | None) -> None:
    members = validator.get("value") or []
    errors = []
    for member in members:
        try:
            _check(member, value, path, lookup)
            return
        except ArgsValidationError as error:
            errors.append((member, error))
    # An object union with a matching discriminator literal: report inside that member.
    if isinstance(value, dict):
        for member, error in errors:
            if member.get("type") == "object" and _discriminator_matches(member, value):
                raise error
    deepest = max(errors, key=lambda pair: len(pair[1].path), default=None)
    if deepest is not None and len(deepest[1].path) > len(path):
        raise deepest[1]
    raise _mismatch(validator, value, path)


def _discriminator_matches(member: Mapping[str, Any], value: dict) -> bool:
    for name, spec in (member.get("value") or {}).items():
        field = spec.get("fieldType") or {}
        if field.get("type") == "literal" and name in value:
            try:
                return values.compare(values.decode(field.get("value")), value[name]) == 0
            except ValueError:
                return False
    return False


# ---------------------------------------------------------------------------
# JSON5-ish text -> Convex value


class ArgsSyntaxError(ValueError):
    def __init__(self, message: str, line: int, column: int):
        super().__init__(f"Line {line}, column {column}: {message}")
        self.message = message
        self.line = line
        self.column = column


_NUMBER = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(n)?")
_WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0", "/": "/", "\\": "\\",
            "'": "'", '"': '"', "\n": ""}
_WORD_HINTS = {"True": "true", "False": "false", "None": "null", "undefined": "null or leave the field out",
               "nil": "null", "NULL": "null"}


def parse_args(text: str) -> Any:
    """Parse what a developer types for arguments: JSON plus JSON5 comforts (unquoted keys,
    single quotes, trailing commas, // and /* */ comments, hex, Infinity/NaN) and `123n` for an
    int64. Plain numbers are float64. `{"$bytes": ...}`/`{"$integer": ...}` objects decode.
    Empty text is `{}`. Raises ArgsSyntaxError with line and column."""
    parser = _Parser(text)
    parser.skip()
    if parser.at_end():
        return {}
    value = parser.value(0)
    parser.skip()
    if not parser.at_end():
        parser.fail(f"unexpected {parser.describe()} after the value")
    return value


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    # -- positions and errors --

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def location(self, pos: int | None = None) -> tuple[int, int]:
        pos = self.pos if pos is None else pos
        line = self.text.count("\n", 0, pos) + 1
        column = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return line, column

    def fail(self, message: str, pos: int | None = None):
        raise ArgsSyntaxError(message, *self.location(pos))

    def describe(self) -> str:
        if self.at_end():
            return "end of text"
        word = _WORD.match(self.text, self.pos)
        return f"`{word.group(0)}`" if word else f"`{self.text[self.pos]}`"

    def skip(self) -> None:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t\r\n\ufeff\u00a0":
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    self.fail("unclosed /* comment")
                self.pos = end + 2
            else:
                return

    # -- values --

    def value(self, depth: int) -> Any:
        if depth > values.MAX_NESTING:
            self.fail(f"nested deeper than {values.MAX_NESTING} levels")
        self.skip()
        if self.at_end():
            self.fail("expected a value, found the end of the text")
        char = self.text[self.pos]
        if char == "{":
            return self.object(depth)
        if char == "[":
            return self.array(depth)
        if char in "\"'":
            return self.string()
        if char in "+-.0123456789":
            return self.number()
        return self.word()

    def object(self, depth: int) -> Any:
        start = self.pos
        self.pos += 1
        out: dict[str, Any] = {}
        while True:
            self.skip()
            if self.at_end():
                self.fail("this object is never closed with `}`", start)
            if self.text[self.pos] == "}":
                self.pos += 1
                return _decode_special(out, self, start)
            key_pos = self.pos
            key = self.key()
            if key in out:
                self.fail(f"field `{key}` appears twice", key_pos)
            self.skip()
            if self.at_end() or self.text[self.pos] != ":":
                self.fail(f"expected `:` after the key `{key}`, found {self.describe()}")
            self.pos += 1
            out[key] = self.value(depth + 1)
            self.skip()
            if self.at_end():
                self.fail("this object is never closed with `}`", start)
            if self.text[self.pos] == ",":
                self.pos += 1
            elif self.text[self.pos] != "}":
                self.fail(f"expected `,` or `}}` after the value of `{key}`, found {self.describe()}")

    def key(self) -> str:
        char = self.text[self.pos]
        if char in "\"'":
            return self.string()
        word = _WORD.match(self.text, self.pos)
        if not word:
            self.fail(f"expected a field name, found {self.describe()}")
        self.pos = word.end()
        return word.group(0)

    def array(self, depth: int) -> list:
        start = self.pos
        self.pos += 1
        out = []
        while True:
            self.skip()
            if self.at_end():
                self.fail("this array is never closed with `]`", start)
            if self.text[self.pos] == "]":
                self.pos += 1
                return out
            out.append(self.value(depth + 1))
            self.skip()
            if self.at_end():
                self.fail("this array is never closed with `]`", start)
            if self.text[self.pos] == ",":
                self.pos += 1
            elif self.text[self.pos] != "]":
                self.fail(f"expected `,` or `]` after an array item, found {self.describe()}")

    def string(self) -> str:
        quote = self.text[self.pos]
        start = self.pos
        self.pos += 1
        parts = []
        text = self.text
        while True:
            end = self.pos
            while end < len(text) and text[end] not in (quote, "\\", "\n"):
                end += 1
            parts.append(text[self.pos:end])
            self.pos = end
            if end >= len(text) or text[end] == "\n":
                self.fail("this string is never closed", start)
            if text[end] == quote:
                self.pos = end + 1
                return "".join(parts)
            parts.append(self.escape())

    def escape(self) -> str:
        self.pos += 1  # the backslash
        if self.at_end():
            self.fail("a string ends with a lone backslash")
        char = self.text[self.pos]
        if char == "u":
            return self.unicode_escape()
        if char == "x":
            digits = self.text[self.pos + 1:self.pos + 3]
            if not re.fullmatch(r"[0-9a-fA-F]{2}", digits):
                self.fail("\\x needs two hex digits")
            self.pos += 3
            return chr(int(digits, 16))
        if char in _ESCAPES:
            self.pos += 1
            return _ESCAPES[char]
        self.fail(f"unknown escape \\{char}")

    def unicode_escape(self) -> str:
        digits = self.text[self.pos + 1:self.pos + 5]
        if not re.fullmatch(r"[0-9a-fA-F]{4}", digits):
            self.fail("\\u needs four hex digits")
        self.pos += 5
        code = int(digits, 16)
        if 0xD800 <= code < 0xDC00 and self.text.startswith("\\u", self.pos):
            low = self.text[self.pos + 2:self.pos + 6]
            if re.fullmatch(r"[0-9a-fA-F]{4}", low) and 0xDC00 <= int(low, 16) < 0xE000:
                self.pos += 6
                return chr(0x10000 + ((code - 0xD800) << 10) + (int(low, 16) - 0xDC00))
        if 0xD800 <= code < 0xE000:
            self.fail("a lone surrogate \\u escape is not a valid string")
        return chr(code)

    def number(self) -> Any:
        start = self.pos
        sign = self.text[self.pos] if self.text[self.pos] in "+-" else ""
        rest = self.text[self.pos + len(sign):]
        for word, number in (("Infinity", math.inf), ("NaN", math.nan)):
            if rest.startswith(word):
                self.pos += len(sign) + len(word)
                return -number if sign == "-" else number
        match = _NUMBER.match(self.text, self.pos)
        if not match or match.end() == start + len(sign):
            self.fail(f"expected a number, found {self.describe()}")
        literal = match.group(0)
        self.pos = match.end()
        if _WORD.match(self.text, self.pos) or (not self.at_end() and self.text[self.pos].isdigit()):
            self.fail(f"unexpected {self.describe()} right after the number {literal}")
        body = literal[:-1] if match.group(1) else literal
        if match.group(1):
            return self.bigint(body, start)
        if re.match(r"[+-]?0[xX]", body):
            return float(int(body, 16))
        return float(body)

    def bigint(self, body: str, start: int) -> int:
        if not re.fullmatch(r"[+-]?(?:0[xX][0-9a-fA-F]+|\d+)", body):
            self.fail(f"{body}n: an int64 must be a whole number", start)
        number = int(body, 16) if re.match(r"[+-]?0[xX]", body) else int(body)
        if not values.INT64_MIN <= number <= values.INT64_MAX:
            self.fail(f"{body}n does not fit in an int64", start)
        return number

    def word(self) -> Any:
        match = _WORD.match(self.text, self.pos)
        if not match:
            self.fail(f"unexpected {self.describe()}: expected a value")
        word = match.group(0)
        known = {"true": True, "false": False, "null": None, "Infinity": math.inf, "NaN": math.nan}
        if word in known:
            self.pos = match.end()
            return known[word]
        if word in _WORD_HINTS:
            self.fail(f"`{word}` is not a value here: write {_WORD_HINTS[word]}")
        self.fail(f"unexpected word `{word}`: strings need quotes (\"{word}\")")


def _decode_special(obj: dict, parser: _Parser, start: int) -> Any:
    """`{"$bytes": "..."}`, `{"$integer": "..."}`, `{"$float": "..."}` as convex_encoded_json."""
    if len(obj) == 1:
        (key, payload), = obj.items()
        if key in ("$bytes", "$integer", "$float"):
            try:
                return values.decode({key: payload})
            except ValueError as error:
                parser.fail(str(error), start)
    return obj


def format_value(value: Any, indent: int = 2) -> str:
    """Editable text `parse_args` reads back to the same value (int64 as 123n, bytes as $bytes)."""
    return _format(value, indent, 0)


def _format(value: Any, indent: int, level: int) -> str:
    if isinstance(value, dict):
        if not value:
            return "{}"
        pad = " " * indent * (level + 1)
        items = [f"{pad}{_key(k)}: {_format(v, indent, level + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent * level + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        pad = " " * indent * (level + 1)
        return "[\n" + ",\n".join(pad + _format(v, indent, level + 1) for v in value) + "\n" + " " * indent * level + "]"
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return f"{value}n"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value == 0 and math.copysign(1.0, value) < 0:
            return "-0.0"
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bytes):
        return json.dumps(values.encode(value))
    return json.dumps(values.encode(value))


def _key(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)
