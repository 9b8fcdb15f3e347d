"""Order-preserving byte encoding of Convex values (QUERIES §2.4).

`encode_value(a) < encode_value(b)` (memcmp) exactly when `values.compare(a, b) < 0`, and the
encoding is prefix-free, so a compound index key is the concatenation of its parts and "all keys
whose first k parts equal P" is the byte interval [P, prefix_end(P)).

Tags follow the backend's sort keys: undefined 0x01, null 0x03, int64 0x04, float64 0x0D,
false 0x0E, true 0x0F, string 0x10, bytes 0x11, array 0x12, object 0x15.
Strings and bytes escape 0x00 as 0x00 0xFF and end with 0x00; every byte that can follow a
terminator is < 0xFF, so a shorter string sorts first. Arrays end with 0x00 (all tags are > 0);
object fields each start with 0x01 (so the 0x00 terminator sorts before any field).
"""

from __future__ import annotations

import struct
from typing import Any

from console import values
from console.values import UNDEFINED

from json import JSONEncoder
from math import copysign as _copysign

_SIGN = 1 << 63
_MASK = (1 << 64) - 1
_pack_d = struct.Struct(">d").pack
_unpack_q = struct.Struct(">Q").unpack
_pack_q = struct.Struct(">Q").pack

UNDEFINED_KEY = b"\x01"
_encode_json = JSONEncoder(separators=(",", ":"), sort_keys=True).encode


def _escape(data: bytes) -> bytes:
    if b"\x00" in data:
        data = data.replace(b"\x00", b"\x00\xff")
    return data + b"\x00"


def _encode_float(value: float) -> bytes:
    bits = _unpack_q(_pack_d(value))[0]
    bits = (bits ^ _MASK) if bits & _SIGN else (bits | _SIGN)
    return b"\x0d" + _pack_q(bits)


def encode_value(value: Any) -> bytes:
    """The sort-key bytes of one value (UNDEFINED allowed)."""
    if isinstance(value, str):
        return b"\x10" + _escape(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, float):
        return _encode_float(value)
    if isinstance(value, bool):
        return b"\x0f" if value else b"\x0e"
    if isinstance(value, int):
        return b"\x04" + _pack_q(value + _SIGN)
    if value is None:
        return b"\x03"
    if value is UNDEFINED:
        return UNDEFINED_KEY
    if isinstance(value, bytes):
        return b"\x11" + _escape(value)
    if isinstance(value, list):
        return b"\x12" + b"".join(encode_value(item) for item in value) + b"\x00"
    if isinstance(value, dict):
        parts = [b"\x15"]
        for name in sorted(value, key=lambda n: n.encode("utf-8")):
            parts.append(b"\x01" + _escape(name.encode("utf-8")) + encode_value(value[name]))
        parts.append(b"\x00")
        return b"".join(parts)
    raise ValueError(f"{type(value).__name__} is not a supported Convex value")


def encode_values(values: list) -> bytes:
    return b"".join(encode_value(v) for v in values)


def get_path(doc: dict, path: str) -> Any:
    """The value at a dotted field path, or UNDEFINED when missing (or through a non-object)."""
    if "." not in path:
        return doc.get(path, UNDEFINED)
    current: Any = doc
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return UNDEFINED
        current = current[part]
    return current


def id_key(doc_id: str) -> bytes:
    return b"\x10" + doc_id.encode("ascii") + b"\x00"


def id_from_key(key: bytes) -> str:
    return key[1:-1].decode("ascii")


def index_key(doc: dict, fields: tuple[str, ...]) -> bytes:
    """Key of `doc` in an index on `fields` (+ `_creationTime`, `_id` appended)."""
    head = b"".join(encode_value(get_path(doc, f)) for f in fields)
    return head + _encode_float(doc["_creationTime"]) + id_key(doc["_id"])


def index_keys(doc: dict, specs: list[tuple[int, tuple[str, ...]]]) -> list[tuple[int, bytes]]:
    """(index_id, key) of `doc` for each (index_id, fields) spec (by_id excluded by the caller),
    encoding each field and the shared `_creationTime`/`_id` suffix once."""
    suffix = _encode_float(doc["_creationTime"]) + b"\x10" + doc["_id"].encode("ascii") + b"\x00"
    encoded: dict[str, bytes] = {}
    result = []
    for index_id, fields in specs:
        head = b""
        for f in fields:
            part = encoded.get(f)
            if part is None:
                value = get_path(doc, f) if "." in f else doc.get(f, UNDEFINED)
                part = encoded[f] = encode_value(value)
            head += part
        result.append((index_id, head + suffix))
    return result


def dumps_document(doc: dict) -> str:
    """convex_encoded_json text of a checked document; flat documents of plain JSON scalars skip
    the general encoder (they encode to themselves)."""
    for value in doc.values():
        kind = type(value)
        if kind is str or value is None or kind is bool:
            continue
        if kind is float and value - value == 0.0 and (value != 0.0 or _copysign(1.0, value) > 0):
            continue
        return _encode_json(values.encode(doc))
    return _encode_json(doc)


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with `prefix` (None: +inf)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def successor(key: bytes) -> bytes:
    """The smallest byte string strictly greater than `key`."""
    return key + b"\x00"
