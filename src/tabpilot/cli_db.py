"""`tabpilot db upgrade`: the store's schema brought to this tabpilot's version on purpose
(an operator's step before rolling out servers), rather than by the first process that
opens it. Opening a store upgrades it too; this says what it did."""

from __future__ import annotations

import typer

from tabpilot.cli import Workspace, app, say

db_app = typer.Typer(no_args_is_help=True, help="the metadata store's schema")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade(workspace: Workspace = None) -> None:
    """Run the store's Alembic migrations (on --store / $TABPILOT_STORE, else the
    workspace's tabpilot.db) up to this tabpilot's schema; safe to repeat."""
    from tabpilot.config import workspace_path
    from tabpilot.settings import Backends
    from tabpilot.store import Store, migrations

    url = Backends.resolve().store_url(workspace_path(workspace))
    before = None
    try:  # the version found, before opening (which upgrades) changes it
        from tabpilot.store.engines import engine_for

        before = migrations.current(engine_for(url))
    except Exception:  # an unreachable server: opening it below says so in one line
        pass
    store = Store.for_workspace(workspace_path(workspace))
    after = migrations.current(store.engine)
    if before == after:
        say(f"store {store.shown_url}: schema {after}, up to date")
    else:
        say(f"store {store.shown_url}: schema upgraded from {before or 'none'} to {after}")
