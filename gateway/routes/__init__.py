"""The HTTP routes: webhooks (the ingest fast path, plain ASGI), health, and the admin API
(/v1), whose handlers receive their services as Litestar dependencies
(``admin_dependencies.py``)."""
