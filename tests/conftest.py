"""Shared by every test folder. Its only job: pytest puts this folder on sys.path when it loads
this file, so tests import the builders as `support.fhir` and `support.engine`."""
