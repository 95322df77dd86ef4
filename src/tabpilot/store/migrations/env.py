"""Alembic's environment for tabpilot's store: run only programmatically, by
`tabpilot.store.migrations.upgrade`, on the connection (and transaction) it hands over
in `config.attributes["connection"]`; there is no alembic.ini and no offline mode."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
