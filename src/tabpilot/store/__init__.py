"""Metadata store (SQLAlchemy: SQLite by default, PostgreSQL at scale)."""

from tabpilot.store.metadata import CandidateRow, JobRow, Store

__all__ = ["CandidateRow", "JobRow", "Store"]
