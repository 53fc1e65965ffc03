"""Documents for people: HTML from the app's Jinja templates (autoescaped), and PDF rendered
from that same HTML by WeasyPrint. The accounting of disclosures (CONTRACT 8) today.

One template body (`_accounting.html`) serves the panel's page, the standalone HTML of
`consent-gap accounting --format html` and the PDF, so what a client receives on paper is
what the privacy officer saw on screen. WeasyPrint is imported only when a PDF is asked for
(it loads Pango, and the CLI's JSON path should not pay for it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from consent_gap.accounting import Accounting, Entry, Summary
from consent_gap.normalize import format_instant

#: How each decision reads to the client beside the purpose.
STATUS = {
    "required": "Required by law",
    "permitted": "Permitted by law",
    "authorized": "Authorized by the client",
    "unauthorized": "Not permitted: made without an authorization or legal exception",
    "review": "Under review by the practice",
}
UNNAMED = "Recipient not named in the record"


@dataclass(frozen=True)
class Row:
    """One line of the table: an entry, or a summary of several."""

    disclosure: str  # the first one, for a summary
    dates: str
    count: int
    decision: str
    status: str
    recipient_name: str
    recipient_address: str | None
    description: str
    purpose: str
    requests: tuple[str, ...]


def _row(item: Entry | Summary) -> Row:
    first = item.first if isinstance(item, Summary) else item
    count = item.count if isinstance(item, Summary) else 1
    dates = first.date
    if isinstance(item, Summary) and item.last.date != first.date:
        dates = f"{first.date} to {item.last.date}"
    recipient = first.recipient
    return Row(
        disclosure=first.disclosure, dates=dates, count=count, decision=first.decision,
        status=STATUS.get(first.decision, first.decision),
        recipient_name=recipient.name or recipient.reference or UNNAMED,
        recipient_address=recipient.address,
        description=first.description, purpose=first.purpose, requests=first.requests,
    )


@dataclass(frozen=True)
class AccountingDocument:
    """What the accounting's template shows: the header and the rows."""

    accounting: Accounting
    prepared: str
    css: Markup

    @property
    def practice_name(self) -> str:
        practice = self.accounting.practice
        if practice is None:
            return "The practice (not configured: set CONSENT_GAP_ORGANIZATION)"
        return practice.name or practice.reference or "The practice"

    @property
    def practice_address(self) -> str | None:
        return self.accounting.practice.address if self.accounting.practice else None

    @property
    def client_name(self) -> str:
        return self.accounting.patient_name or "Name not in the record"

    @property
    def period_from(self) -> str:
        return _shown(self.accounting.start)

    @property
    def period_to(self) -> str:
        return _shown(self.accounting.as_of)

    @property
    def requested(self) -> str:
        return self.accounting.as_of.date().isoformat()

    @property
    def rows(self) -> list[Row]:
        return [_row(item) for item in self.accounting.rows]


def _shown(moment: datetime) -> str:
    """A date alone when it is a day's first instant, else the instant (UTC)."""
    if (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0):
        return moment.date().isoformat()
    return format_instant(moment).replace("T", " ").replace("Z", " UTC")


@functools.cache
def environment() -> Environment:
    """The app's templates, autoescaped as in Flask (html and xml files)."""
    return Environment(loader=PackageLoader("consent_gap.web", "templates"),
                       autoescape=select_autoescape(("html", "xml")))


@functools.cache
def stylesheet() -> Markup:
    """The accounting's CSS (web/static/accounting.css), our own file, inlined as is."""
    text = resources.files("consent_gap.web").joinpath("static/accounting.css").read_text()
    return Markup(text)  # noqa: S704 - the package's own stylesheet, not input


def document(accounting: Accounting, prepared: datetime) -> AccountingDocument:
    return AccountingDocument(accounting=accounting, prepared=_shown(prepared),
                              css=stylesheet())


def accounting_html(accounting: Accounting, prepared: datetime) -> str:
    """The standalone HTML document (styles inlined)."""
    template = environment().get_template("accounting_document.html")
    return template.render(doc=document(accounting, prepared))


def pdf_from_html(html: str) -> bytes:
    """A PDF of an HTML document (WeasyPrint; no external resources are fetched)."""
    from weasyprint import HTML

    def refuse(url: str, *args: object, **kwargs: object) -> dict:
        raise ValueError(f"external resource refused: {url}")

    return HTML(string=html, url_fetcher=refuse).write_pdf()


def accounting_pdf(accounting: Accounting, prepared: datetime) -> bytes:
    """The PDF of the same document as `accounting_html`."""
    return pdf_from_html(accounting_html(accounting, prepared))
