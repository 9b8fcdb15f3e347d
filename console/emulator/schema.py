"""`define_schema` / `define_table`, mirroring `convex/server`, producing the engine's schema.

```python
schema = define_schema({
    "users": define_table({"clerkId": v.string()}).index("by_clerkId", ["clerkId"]),
})
```
"""

from __future__ import annotations

from console.emulator.engine.schema import (
    IndexDefinition,
    SchemaDefinition,
    SearchIndexDefinition,
    TableDefinition,
    VectorIndexDefinition,
)
from console.emulator.validators import Validator, as_object_validator


class TableBuilder:
    """What `define_table(...)` returns; chain `.index`, `.search_index`, `.vector_index`."""

    def __init__(self, document: dict | Validator | None):
        validator = as_object_validator(document)
        self.document_type = None if validator is None else validator.json()
        self.indexes: list[IndexDefinition] = []
        self.search_indexes: list[SearchIndexDefinition] = []
        self.vector_indexes: list[VectorIndexDefinition] = []

    def index(self, name: str, fields: list[str]) -> "TableBuilder":
        self.indexes.append(IndexDefinition(name, fields))
        return self

    def search_index(self, name: str, *, search_field: str, filter_fields: list[str] = ()) -> "TableBuilder":
        self.search_indexes.append(SearchIndexDefinition(name, search_field, filter_fields))
        return self

    def vector_index(self, name: str, *, vector_field: str, dimensions: int, filter_fields: list[str] = ()) -> "TableBuilder":
        self.vector_indexes.append(VectorIndexDefinition(name, vector_field, dimensions, tuple(filter_fields)))
        return self

    def to_definition(self) -> TableDefinition:
        return TableDefinition(
            document_type=self.document_type,
            indexes=list(self.indexes),
            search_indexes=list(self.search_indexes),
            vector_indexes=list(self.vector_indexes),
        )


def define_table(document: dict | Validator | None = None) -> TableBuilder:
    return TableBuilder(document)


def define_schema(tables: dict[str, TableBuilder], *, schema_validation: bool = True) -> SchemaDefinition:
    definition = SchemaDefinition(
        tables={name: _table(name, builder) for name, builder in tables.items()},
        schema_validation=schema_validation,
    )
    definition.check()
    return definition


def _table(name: str, builder) -> TableDefinition:
    if isinstance(builder, TableDefinition):
        return builder
    if not isinstance(builder, TableBuilder):
        raise TypeError(f"Table {name!r} must be defined with define_table(...), got {builder!r}")
    return builder.to_definition()
