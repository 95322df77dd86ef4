"""Metadata store (SQLAlchemy: SQLite by default, PostgreSQL at scale)."""

from tabpilot.store.metadata import CandidateRow, EndpointRow, JobRow, ResourceRow, Store

__all__ = ["CandidateRow", "EndpointRow", "JobRow", "ResourceRow", "Store"]
