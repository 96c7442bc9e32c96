"""Ingest: from verified events to a durable ack (``pipeline.py``), the group-commit batcher,
the one storage writer (``isolation.py``), the local spool, its drainer and its lock."""
