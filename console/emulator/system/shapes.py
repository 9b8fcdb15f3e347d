"""Inferred table shapes for `GET /api/shapes2`, in the dashboard's JSON (`dashboard_shape_json`).

A shape is a tuple whose first item is the kind; members of a union sort in Convex's
`ReducedShape` order. Objects in a union merge into one object whose fields missing from
some documents are optional; floats merge into one Float64.
"""

from __future__ import annotations

import math

from console import ids

MAX_DOCS_PER_TABLE = 20_000  # large tables are sampled from the oldest documents

_ORDER = {"Unknown": 0, "Never": 1, "Id": 2, "Null": 3, "Int64": 4, "Float64": 5, "Boolean": 6,
          "String": 7, "Bytes": 8, "Object": 9, "Array": 10, "Record": 11}
NEVER = ("Never",)


def value_shape(value, tables: dict[int, str]) -> tuple:
    if value is None:
        return ("Null",)
    if isinstance(value, bool):
        return ("Boolean",)
    if isinstance(value, int):
        return ("Int64",)
    if isinstance(value, float):
        special = math.isnan(value) or math.isinf(value) or (value == 0 and math.copysign(1, value) < 0)
        return ("Float64", special)
    if isinstance(value, str):
        return _string_shape(value, tables)
    if isinstance(value, bytes):
        return ("Bytes",)
    if isinstance(value, list):
        element = NEVER
        for item in value:
            element = union(element, value_shape(item, tables))
        return ("Array", element)
    if isinstance(value, dict):
        return ("Object", {key: (False, value_shape(item, tables)) for key, item in value.items()})
    return ("Unknown",)


def _string_shape(value: str, tables: dict[int, str]) -> tuple:
    if len(value) >= ids.MIN_ID_LENGTH and ids.is_id(value):
        table_number, _ = ids.decode_id(value)
        if table_number in tables:
            return ("Id", tables[table_number])
    return ("String",)


def _members(shape: tuple) -> list[tuple]:
    if shape[0] == "Union":
        return list(shape[1])
    if shape[0] == "Never":
        return []
    return [shape]


def _merge_objects(a: dict, b: dict) -> dict:
    fields = {}
    for name in set(a) | set(b):
        if name in a and name in b:
            fields[name] = (a[name][0] or b[name][0], union(a[name][1], b[name][1]))
        else:
            optional, shape = a.get(name) or b.get(name)
            fields[name] = (True, shape)
    return fields


def union(a: tuple, b: tuple) -> tuple:
    merged: dict = {}
    for member in _members(a) + _members(b):
        kind = member[0]
        key = (kind, member[1]) if kind == "Id" else kind
        if key not in merged:
            merged[key] = member
        elif kind == "Float64":
            merged[key] = ("Float64", merged[key][1] or member[1])
        elif kind == "Object":
            merged[key] = ("Object", _merge_objects(merged[key][1], member[1]))
        elif kind == "Array":
            merged[key] = ("Array", union(merged[key][1], member[1]))
    members = sorted(merged.values(), key=lambda s: (_ORDER[s[0]], s[1] if s[0] == "Id" else ""))
    if not members:
        return NEVER
    if len(members) == 1:
        return members[0]
    return ("Union", members)


def to_json(shape: tuple) -> dict:
    kind = shape[0]
    if kind == "Id":
        return {"type": "Id", "tableName": shape[1]}
    if kind == "Float64":
        return {"type": "Float64", "float64Range": {"hasSpecialValues": shape[1]}}
    if kind == "Object":
        return {
            "type": "Object",
            "fields": [
                {"fieldName": name, "optional": optional, "shape": to_json(field)}
                for name, (optional, field) in sorted(shape[1].items())
            ],
        }
    if kind == "Array":
        return {"type": "Array", "shape": to_json(shape[1])}
    if kind == "Union":
        return {"type": "Union", "shapes": [to_json(member) for member in shape[1]]}
    return {"type": kind}


def table_shape(db, table: str, tables: dict[int, str], limit: int = MAX_DOCS_PER_TABLE) -> tuple:
    query = {"source": {"type": "FullTableScan", "tableName": table, "order": "asc"}, "operators": [{"limit": limit}]}

    def read(tx) -> tuple:
        shape = NEVER
        query_id = tx.query_stream(query)
        while True:
            doc, done = tx.query_stream_next(query_id)
            if done or doc is None:
                return shape
            shape = union(shape, value_shape(doc, tables))

    return db.read(read)


def all_table_shapes(db) -> dict:
    """`{tableName: shapeJSON}` for every user table."""
    tables = {int(number): name for number, name in db.table_mapping().items()}
    return {
        name: to_json(table_shape(db, name, tables))
        for name in db.table_names()
        if not name.startswith("_")
    }
