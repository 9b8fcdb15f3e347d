"""The emulator's document engine (docs/internals.md §2): SQLite storage, OCC transactions,
indexes, queries, pagination and schema validation, shaped after Convex's syscalls."""

from .database import Database, schema_from_export
from .query import InvalidCursor
from .schema import IndexDefinition, SchemaDefinition, SearchIndexDefinition, TableDefinition, VectorIndexDefinition
from .transaction import Commit, ConflictError, IndexWrite, ReadInterval, ReadSet, Transaction
from .validate import ValidationError, display_validator, display_value, validate_value

__all__ = [
    "Commit",
    "ConflictError",
    "Database",
    "IndexDefinition",
    "IndexWrite",
    "InvalidCursor",
    "ReadInterval",
    "ReadSet",
    "SchemaDefinition",
    "SearchIndexDefinition",
    "TableDefinition",
    "Transaction",
    "ValidationError",
    "VectorIndexDefinition",
    "display_validator",
    "display_value",
    "schema_from_export",
    "validate_value",
]
