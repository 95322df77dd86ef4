"""The schema as it was when migrations began; adopts databases made before them.

A database made by a tabpilot without migrations has no alembic_version table, and may
lack tables or columns added later (endpoints.variant, jobs.heartbeat, ...). This
revision creates the tables that are missing and adds the columns that are missing, as
nullable (with their string default, as the old in-place upgrade did), so no row is
lost or rewritten. On an empty database it simply creates the schema.

The tables are written out here, frozen, not imported from `store/metadata.py`: a later
change to the models is a later revision.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

schema = sa.MetaData()

sa.Table(
    "jobs", schema,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("secondary_status", sa.String(48), nullable=False),
    sa.Column("target", sa.String(256), nullable=False),
    sa.Column("input_uri", sa.Text, nullable=False),
    sa.Column("problem_type", sa.String(16)),
    sa.Column("metric", sa.String(32)),
    sa.Column("mode", sa.String(16), nullable=False, server_default="hpo"),
    sa.Column("request", sa.JSON, nullable=False),
    sa.Column("job_dir", sa.Text, nullable=False),
    sa.Column("best_candidate", sa.String(128)),
    sa.Column("failure_reason", sa.Text),
    sa.Column("stats", sa.JSON, nullable=False),
    sa.Column("pid", sa.Integer),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("modified", sa.Float, nullable=False),
    sa.Column("ended", sa.Float),
    sa.Column("heartbeat", sa.Float),
)
sa.Table(
    "candidates", schema,
    sa.Column("job", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("algorithm", sa.String(32), nullable=False),
    sa.Column("family", sa.String(32), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("source", sa.String(16), nullable=False, server_default="tpe"),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("objective", sa.Float),
    sa.Column("threshold", sa.Float),
    sa.Column("fit_seconds", sa.Float),
    sa.Column("latency_ms_p50", sa.Float),
    sa.Column("throughput_rows_s", sa.Float),
    sa.Column("model_bytes", sa.BigInteger),  # a model past 2 GiB fits PostgreSQL too
    sa.Column("artifact_dir", sa.Text),
    sa.Column("trained_on", sa.String(16), nullable=False, server_default="train"),
    sa.Column("failure_reason", sa.Text),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("ended", sa.Float),
    sa.ForeignKeyConstraint(["job"], ["jobs.name"], ondelete="CASCADE"),
)
sa.Table(
    "metrics", schema,
    sa.Column("job", sa.String(64), primary_key=True),
    sa.Column("candidate", sa.String(128), primary_key=True),
    sa.Column("split", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.Float),
    sa.ForeignKeyConstraint(["job", "candidate"], ["candidates.job", "candidates.name"],
                            ondelete="CASCADE"),
)
sa.Table(
    "endpoints", schema,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("model_dir", sa.Text, nullable=False),
    sa.Column("job", sa.String(64)),
    sa.Column("candidate", sa.String(128)),
    sa.Column("status", sa.String(16), nullable=False, server_default="InService"),
    sa.Column("capture_percent", sa.Float, nullable=False, server_default="0"),
    sa.Column("output_keys", sa.String(128)),
    sa.Column("capture_dir", sa.Text),
    sa.Column("variant", sa.String(63)),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("modified", sa.Float, nullable=False),
)
sa.Table(
    "resources", schema,
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("status", sa.String(32)),
    sa.Column("failure_reason", sa.Text),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("modified", sa.Float, nullable=False),
    sa.Column("ended", sa.Float),
)


def upgrade() -> None:
    bind = op.get_bind()
    existing = sa.inspect(bind)
    have_tables = set(existing.get_table_names())
    for table in schema.sorted_tables:
        if table.name not in have_tables:
            table.create(bind)
            continue
        have = {c["name"] for c in existing.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have:
                # nullable, as the old in-place upgrade added them: rows already there
                # get the default where there is one, NULL otherwise
                op.add_column(table.name, sa.Column(column.name, column.type, nullable=True,
                                                    server_default=column.server_default))


def downgrade() -> None:
    for table in reversed(schema.sorted_tables):
        op.drop_table(table.name)
