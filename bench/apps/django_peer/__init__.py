"""The peer: what a Python team would deploy instead of Hookline. Django + django-anymail's
Postmark tracking view (basic auth checked by anymail) and a ``get_or_create`` receiver on
anymail's ``tracking`` signal, under gunicorn (sync workers), storing into the same
PostgreSQL through psycopg. Installed by the optional ``bench`` dependency group
(``make bench-peers``); see ``bench/ingest_bench.py --peers``."""
