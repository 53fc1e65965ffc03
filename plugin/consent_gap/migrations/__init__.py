"""Alembic migrations of the checkpoint schema (``scan_runs``, ``scan_progress``).

``checkpoint.CheckpointStore`` upgrades the database to the newest revision when it opens it,
so an upgraded release migrates its database on first start: nothing for the operator to run.
A new revision: a file in ``versions/`` whose ``down_revision`` is the current head, and the
same change in ``checkpoint.py``'s tables (a test compares the two).
"""
