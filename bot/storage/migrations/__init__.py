"""Alembic migrations of the civicdesk schema (run with `civicdesk db upgrade`)."""
