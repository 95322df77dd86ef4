"""Metadata store (SQLAlchemy: SQLite by default, PostgreSQL at scale)."""

from tabpilot.store.metadata import CandidateRow, EndpointRow, JobRow, Store

__all__ = ["CandidateRow", "EndpointRow", "JobRow", "Store"]
