"""The JSON transport of the database syscalls (QUERIES §1.2-1.3), for a later TypeScript host.

`dispatch(tx, op, args_json_text) -> json_text`; errors raise ConvexEngineError (or ConvexError
for InvalidCursor), which a host turns into a rejected promise `{message, data?}`.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from console import values
from console.emulator.errors import ConvexEngineError

from .transaction import Transaction


def _decode(data: Any, what: str, *, allow_undefined: bool = False) -> Any:
    try:
        return values.decode(data, allow_undefined=allow_undefined)
    except ValueError as error:
        raise ConvexEngineError(f"Invalid argument `{what}`: {error}") from None


def _encode_doc(doc: dict | None) -> Any:
    return None if doc is None else values.encode(doc)


def _get(tx: Transaction, args: dict) -> Any:
    return _encode_doc(tx.get(args.get("id"), table=args.get("table"), is_system=bool(args.get("isSystem", False))))


def _insert(tx: Transaction, args: dict) -> Any:
    value = _decode(args.get("value"), "value")
    return {"_id": tx.insert(args.get("table"), value)}


def _patch_value(data: Any) -> Any:
    if not isinstance(data, dict):
        return _decode(data, "value")
    patch = {}
    for name, item in data.items():
        # Only a top-level {"$undefined": null} is allowed: it removes the field.
        patch[name] = values.UNDEFINED if item == {"$undefined": None} else _decode(item, "value")
    values.check_value({k: v for k, v in patch.items() if v is not values.UNDEFINED})
    return patch


def _shallow_merge(tx: Transaction, args: dict) -> Any:
    try:
        patch = _patch_value(args.get("value"))
    except ValueError as error:
        raise ConvexEngineError(f"Invalid argument `value`: {error}") from None
    return _encode_doc(tx.shallow_merge(args.get("id"), patch, table=args.get("table"), is_system=False))


def _replace(tx: Transaction, args: dict) -> Any:
    value = _decode(args.get("value"), "value")
    return _encode_doc(tx.replace(args.get("id"), value, table=args.get("table"), is_system=False))


def _remove(tx: Transaction, args: dict) -> Any:
    return _encode_doc(tx.remove(args.get("id"), table=args.get("table"), is_system=False))


def _query_stream(tx: Transaction, args: dict) -> Any:
    return {"queryId": tx.query_stream(args.get("query"))}


def _query_stream_next(tx: Transaction, args: dict) -> Any:
    doc, done = tx.query_stream_next(args.get("queryId"))
    return {"value": _encode_doc(doc), "done": done}


def _query_cleanup(tx: Transaction, args: dict) -> Any:
    return tx.query_cleanup(args.get("queryId"))


def _query_page(tx: Transaction, args: dict) -> Any:
    result = tx.query_page(
        args.get("query"),
        cursor=args.get("cursor"),
        end_cursor=args.get("endCursor"),
        page_size=args.get("pageSize"),
        maximum_rows_read=args.get("maximumRowsRead"),
        maximum_bytes_read=args.get("maximumBytesRead"),
    )
    return {**result, "page": [values.encode(doc) for doc in result["page"]]}


def _count(tx: Transaction, args: dict) -> Any:
    return float(tx.count(args.get("table")))


def _normalize_id(tx: Transaction, args: dict) -> Any:
    return {"id": tx.normalize_id(args.get("table"), args.get("idString"))}


OPS: dict[str, Callable[[Transaction, dict], Any]] = {
    "1.0/get": _get,
    "1.0/insert": _insert,
    "1.0/shallowMerge": _shallow_merge,
    "1.0/replace": _replace,
    "1.0/remove": _remove,
    "1.0/queryStream": _query_stream,
    "1.0/queryStreamNext": _query_stream_next,
    "1.0/queryCleanup": _query_cleanup,
    "1.0/queryPage": _query_page,
    "1.0/count": _count,
    "1.0/db/normalizeId": _normalize_id,
}


def dispatch(tx: Transaction, op: str, args_json_text: str) -> str:
    handler = OPS.get(op)
    if handler is None:
        raise ConvexEngineError(f"Unknown async operation {op}")
    try:
        args = json.loads(args_json_text)
    except (TypeError, ValueError) as error:
        raise ConvexEngineError(f"Invalid syscall arguments for {op}: {error}") from None
    if not isinstance(args, dict):
        raise ConvexEngineError(f"Invalid syscall arguments for {op}: expected an object")
    return json.dumps(handler(tx, args), separators=(",", ":"))
