"""Alembic environment: runs on the connection that `tradedb.schema.migrate` passes in."""

from __future__ import annotations

from alembic import context

from tradedb.schema.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
context.run_migrations()
