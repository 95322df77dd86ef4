"""Reading, validating, describing and splitting tables."""

from tabpilot.data.read import read_table
from tabpilot.data.schema import ColumnKind, Schema, infer_schema

__all__ = ["ColumnKind", "Schema", "infer_schema", "read_table"]
