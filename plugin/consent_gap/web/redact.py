"""Keep query strings out of request logs: ``/callback?code=...&state=...`` carries an
authorization code, and a search URL can carry a name. Paths stay (they hold no PHI: the
panel's path holds a random launch id, not a patient id)."""

from __future__ import annotations

import logging
import re

_QUERY = re.compile(r"\?[^\s\"]*")


class QueryRedactingFilter(logging.Filter):
    """Rewrites a record's message with every ``?query`` replaced by ``?…``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg = _QUERY.sub("?\u2026", message)
            record.args = None
        return True


def install() -> None:
    """Attach the filter to Werkzeug's request log (the development server's)."""
    logging.getLogger("werkzeug").addFilter(QueryRedactingFilter())
