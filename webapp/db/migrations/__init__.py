"""Alembic scripts for the shop's schema; run them through :mod:`sleigh.webapp.db.migrate`."""
