"""jobs.problem_type: 32 characters, so a forecasting job's `TimeSeriesForecasting` fits.

VARCHAR(16) held the tabular problem types; PostgreSQL refuses a longer value (SQLite
never checked the width, so its files need no change).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":  # SQLite ignores declared widths
        op.alter_column("jobs", "problem_type", type_=sa.String(32),
                        existing_type=sa.String(16), existing_nullable=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("jobs", "problem_type", type_=sa.String(16),
                        existing_type=sa.String(32), existing_nullable=True)
