"""Schema definitions as the engine stores them; `export_json()` is `SchemaDefinition.export()`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from console.emulator.errors import ConvexEngineError

RESERVED_INDEX_NAMES = ("by_id", "by_creation_time")
SYSTEM_FIELD_NAMES = ("_id", "_creationTime")


@dataclass(frozen=True)
class IndexDefinition:
    name: str
    fields: tuple[str, ...]

    def __init__(self, name: str, fields):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "fields", tuple(fields))


@dataclass(frozen=True)
class SearchIndexDefinition:
    name: str
    search_field: str
    filter_fields: tuple[str, ...] = ()

    def __init__(self, name: str, search_field: str, filter_fields=()):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "search_field", search_field)
        object.__setattr__(self, "filter_fields", tuple(filter_fields))


@dataclass(frozen=True)
class VectorIndexDefinition:
    name: str
    vector_field: str
    dimensions: int
    filter_fields: tuple[str, ...] = ()


@dataclass
class TableDefinition:
    document_type: dict | None = None  # ValidatorJSON of the documents, None = any
    indexes: list[IndexDefinition] = field(default_factory=list)
    search_indexes: list[SearchIndexDefinition] = field(default_factory=list)
    vector_indexes: list[VectorIndexDefinition] = field(default_factory=list)

    def export(self, table_name: str) -> dict:
        return {
            "tableName": table_name,
            "indexes": [{"indexDescriptor": i.name, "fields": list(i.fields)} for i in self.indexes],
            "stagedDbIndexes": [],
            "searchIndexes": [
                {"indexDescriptor": s.name, "searchField": s.search_field, "filterFields": list(s.filter_fields)}
                for s in self.search_indexes
            ],
            "stagedSearchIndexes": [],
            "vectorIndexes": [
                {
                    "indexDescriptor": v.name,
                    "vectorField": v.vector_field,
                    "dimensions": v.dimensions,
                    "filterFields": list(v.filter_fields),
                }
                for v in self.vector_indexes
            ],
            "stagedVectorIndexes": [],
            "documentType": self.document_type if self.document_type is not None else {"type": "any"},
        }


@dataclass
class SchemaDefinition:
    tables: dict[str, TableDefinition] = field(default_factory=dict)
    schema_validation: bool = True

    def export(self) -> dict:
        return {
            "tables": [definition.export(name) for name, definition in self.tables.items()],
            "schemaValidation": self.schema_validation,
        }

    def export_json(self) -> str:
        return json.dumps(self.export(), separators=(",", ":"))

    def check(self) -> None:
        """Raise ConvexEngineError for definitions Convex refuses at push time."""
        for table, definition in self.tables.items():
            if table.startswith("_"):
                raise ConvexEngineError(f"Table names cannot start with '_': {table}")
            names = set()
            for index in [*definition.indexes, *definition.search_indexes, *definition.vector_indexes]:
                if index.name in RESERVED_INDEX_NAMES or index.name.startswith("_"):
                    raise ConvexEngineError(f"Index name {index.name} on table {table} is reserved.")
                if index.name in names:
                    raise ConvexEngineError(f"Duplicate index name {index.name} on table {table}.")
                names.add(index.name)
            for index in definition.indexes:
                if not index.fields:
                    raise ConvexEngineError(f"Index {table}.{index.name} must have at least one field.")
                if len(set(index.fields)) != len(index.fields):
                    raise ConvexEngineError(f"Index {table}.{index.name} has duplicate fields.")
                for name in index.fields:
                    if name in SYSTEM_FIELD_NAMES:
                        raise ConvexEngineError(
                            f"In index \"{index.name}\": `{name}` is automatically added to the end of each "
                            "index and cannot be indexed explicitly."
                            if name == "_creationTime"
                            else f"In index \"{index.name}\": `_id` cannot be indexed explicitly."
                        )
