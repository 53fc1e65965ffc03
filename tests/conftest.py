"""Shared by every test folder. Its jobs: pytest puts this folder on sys.path when it loads this
file, so tests import the builders as `support.fhir` and `support.engine`; and it registers the
fixtures every folder may use (`database_url`: SQLite and PostgreSQL, support/databases.py)."""

pytest_plugins = ["support.databases"]
