"""The privacy office's worklist (CONTRACT.md 7 and 7.1): the open consent-gap Tasks across
patients, a finding with its chart context, dispositions, the breach risk assessment and its
deadlines, and the year's breach log.

Signed in by a SMART launch with ``user/`` scopes and no patient: the EHR's launch from a
non-patient context (``/worklist/launch?iss=..&launch=..``) or a standalone launch
(``/worklist/launch?iss=..``, or ``/worklist?iss=..``).

Paging is the server's: one Task search of ``PAGE_SIZE`` with its Patients per page, and the
``next`` link (only its query, re-based on the launch's issuer) carried to the next page; the
worklist never loads every Task. Every action is a POST with the session's CSRF token and
updates the Task with ``If-Match`` on the version the officer saw: the second of two officers
is told, and nothing of the first one's is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Request,
    Response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from consent_gap import breach, wording
from consent_gap.domain import Decision, Documentation
from consent_gap.evaluate import text_names
from consent_gap.fetch_plan import breach_log_search, worklist_search
from consent_gap.fhir import FhirError
from consent_gap.fhir.errors import FhirHttpError
from consent_gap.mappings import load_rules
from consent_gap.normalize import _human_name
from consent_gap.wording import names as named
from consent_gap.writeback import office
from consent_gap.writeback.tasks import TaskView, read_task

from . import oauth, services
from .chart import SessionExpired, client_for, fetch_chart
from .config import WebConfig
from .context import (
    Launch,
    LaunchMissing,
    get_launch,
    remember_pending,
    remember_target,
    save_launch,
)
from .pages import message

bp = Blueprint("worklist", __name__)
log = logging.getLogger(__name__)

PAGE_SIZE = 50
#: DESIGN.md's worklist scopes, and the panel's reads with user/ (the finding's chart);
#: beyond DESIGN.md, Consent create: `authorization-on-file` attaches the signed form as a
#: Consent (CONTRACT 7). A server that refuses it refuses that disposition alone.
WORKLIST_SCOPES = " ".join([
    "openid", "fhirUser", "online_access",
    "user/Task.rus", "user/Communication.rs", "user/DocumentReference.crs",
    "user/QuestionnaireResponse.crus", "user/Questionnaire.crs", "user/Patient.rs",
    "user/Consent.crs", "user/Provenance.crs", "user/AuditEvent.rs", "user/Device.crs",
    "user/RelatedPerson.rs", "user/Observation.rs", "user/Practitioner.rs",
    "user/Organization.rs",
])
#: How each disposition reads on screen (CONTRACT 7's table), and a Task's businessStatus:
#: wording's.
DISPOSITION_TEXT = {code: wording.disposition(code).label for code in wording.DISPOSITIONS}
BUSINESS_TEXT = {
    **{code: wording.disposition(code).status_text for code in wording.DISPOSITIONS},
    **wording.CONCLUSIONS,
}
AGES = {"": "any age", "30": "30 days or more", "45": "45 days or more",
        "60": "60 days or more"}
CONFLICT = ("Someone else changed this task since you opened it, so nothing you entered was "
            "saved. The page now shows their change; enter yours again if it still applies.")


def _config() -> WebConfig:
    return services.config()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# ---------------------------------------------------------------- signing in

@bp.get("/worklist/launch")
def launch():
    """Start a worklist sign-in: an EHR launch when ``launch`` is given, else standalone."""
    config = _config()
    iss = (request.args.get("iss") or "").strip()
    token = request.args.get("launch") or None
    if not iss:
        return message(400, "No EHR named", "The launch did not say which EHR it came from.",
                       retry=False)
    try:
        base = oauth.allowed_issuer(config, iss)
    except oauth.IssuerNotAllowed:
        log.warning("worklist launch refused: issuer not on the allowlist")
        return message(403, "This EHR is not allowed",
                       "consent-gap is not configured to accept launches from this EHR.",
                       detail=iss[:200], retry=False)
    scope = WORKLIST_SCOPES if token is None else f"launch {WORKLIST_SCOPES}"
    try:
        pending = oauth.begin(config, services.http(), base, token,
                              aud=iss, scope=scope)
    except oauth.SignInFailed as error:
        return message(502, "The EHR could not be reached", f"Sign-in could not start: {error}.")
    remember_pending(pending)
    remember_target(pending.state, "worklist")
    log.info("worklist launch started (%s)", "ehr" if token else "standalone")
    return redirect(pending.authorize_url, code=302)


def signed_in(launch: Launch) -> Response:
    """The callback's end for a worklist sign-in (launch.py calls it)."""
    session.rotate()
    session.pop("csrf", None)
    save_launch(launch)
    session["office"] = launch.lid
    log.info("worklist launch completed: launch %s", launch.lid)
    return redirect(url_for("worklist.show"), code=303)


def with_office(view: Callable[..., Any]) -> Callable[..., Any]:
    """The session's worklist launch, or a page saying how to open the worklist."""

    @wraps(view)
    def wrapper(**kwargs: Any):
        try:
            launch = get_launch(session.get("office") or "-")
        except LaunchMissing:
            if request.method == "GET" and request.args.get("iss"):
                return redirect(url_for("worklist.launch", iss=request.args["iss"]))
            return message(401, "Open the worklist from the EHR",
                           "Sign in to the privacy office's worklist from your EHR, or your "
                           "session has ended.", retry=False)
        try:
            return view(launch, **kwargs)
        except SessionExpired:
            return message(401, "Your session has ended", "Open the worklist again from the EHR.",
                           retry=False)
        except ValueError:  # not a FHIR id in the URL
            return message(404, "No such task", "That is not a task of the worklist.",
                           retry=False)
        except FhirError as error:
            log.warning("worklist: FHIR error for launch %s: %s", launch.lid,
                        type(error).__name__)
            return message(502, "The EHR's record could not be read",
                           "consent-gap could not read the worklist from the EHR.",
                           detail=type(error).__name__, retry=False)

    return wrapper


def _user(launch: Launch) -> str | None:
    """The officer as ``Type/id`` (fhirUser may be absolute)."""
    parts = (launch.fhir_user or "").rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


# ---------------------------------------------------------------- the list

@dataclass(frozen=True)
class Row:
    task: TaskView
    patient_name: str
    days_left: int | None

    @property
    def business_text(self) -> str:
        return BUSINESS_TEXT.get(self.task.business or "", "New")

    @property
    def decision_text(self) -> str:
        code = str(self.task.decision or "")
        return wording.decision(code) if code in wording.DECISIONS else code


@dataclass
class Filters:
    decision: str = ""
    clinician: str = ""
    age: str = ""

    @classmethod
    def from_args(cls, args: Any) -> Filters:
        decision = args.get("decision", "")
        clinician = (args.get("clinician") or "").strip()
        age = args.get("age", "")
        return cls(decision if decision in ("unauthorized", "review") else "",
                   clinician if _is_ref(clinician, ("Practitioner", "PractitionerRole")) else "",
                   age if age in AGES else "")

    def query(self) -> dict[str, str]:
        return {k: v for k, v in (("decision", self.decision), ("clinician", self.clinician),
                                  ("age", self.age)) if v}


def _is_ref(text: str, types: tuple[str, ...]) -> bool:
    rtype, _, rid = text.partition("/")
    return rtype in types and bool(rid) and rid.replace("-", "").replace(".", "").isalnum() \
        and len(rid) <= 64


def _names(resources: list[dict[str, Any]]) -> dict[str, str]:
    return {f"{r['resourceType']}/{r['id']}": display_name(r)
            for r in resources if r.get("id") and r.get("resourceType")}


def display_name(resource: dict[str, Any]) -> str:
    """A person's or an organization's name for the screen."""
    if resource.get("resourceType") == "Organization":
        name = resource.get("name")
        if isinstance(name, str) and name.strip():
            return name.strip()
    fallback = ("a client whose name is not recorded" if resource.get("resourceType") ==
                "Patient" else "someone the record does not name")  # never the id
    return _human_name(resource.get("name")) or fallback


def page_of(client: Any, filters: Filters, page: str | None, today: date
            ) -> tuple[list[Row], str | None]:
    """One page of the worklist and the query of the next page's link (None on the last)."""
    if page:
        bundle = client.page(f"{client.base_url}?{page}")
    else:
        before = (today - timedelta(days=int(filters.age))).isoformat() if filters.age else None
        search = worklist_search(decision=filters.decision or None,
                                 clinician=filters.clinician or None,
                                 discovered_before=before, page_size=PAGE_SIZE)
        bundle = client.first_page(search.type, list(search.params))
    resources = [e.get("resource") for e in bundle.get("entry") or []
                 if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    names = _names([r for r in resources if r.get("resourceType") == "Patient"])
    rows = []
    for resource in resources:
        if resource.get("resourceType") != "Task":
            continue
        task = read_task(resource)
        rows.append(Row(task, names.get(task.patient or "", "unknown client"),
                        breach.days_left(task.deadline, today)))
    nxt = client.next_link(bundle)
    return rows, (urlsplit(nxt).query or None) if nxt else None


@bp.get("/worklist")
@with_office
def show(launch: Launch):
    filters = Filters.from_args(request.args)
    page = request.args.get("page") or None
    today = _now().date()
    with client_for(launch) as client, ThreadPoolExecutor(max_workers=1) as pool:
        # the clinicians to filter by are read while the page's Task search runs
        names = pool.submit(_clinicians, client)
        rows, nxt = page_of(client, filters, page, today)
        clinicians = names.result()
    next_url = url_for("worklist.show", **filters.query(), page=nxt) if nxt else None
    return render_template("worklist.html", rows=rows, filters=filters, ages=AGES,
                           clinicians=clinicians, next_url=next_url, first=page is None,
                           first_url=url_for("worklist.show", **filters.query()),
                           notices=_take_notices(), today=today)


def _clinicians(client: Any) -> list[tuple[str, str]]:
    """The practitioners to filter by (the first 200, by name)."""
    try:
        found = [r for r in client.first_page("Practitioner", [("_count", "200")]).get(
            "entry") or [] if isinstance(r, dict)]
    except FhirError:
        return []
    people = [e["resource"] for e in found if isinstance(e.get("resource"), dict)
              and e["resource"].get("resourceType") == "Practitioner"]
    return sorted(((f"Practitioner/{p['id']}", display_name(p)) for p in people),
                  key=lambda item: item[1].lower())


# ---------------------------------------------------------------- one finding

@dataclass
class Detail:
    task: TaskView
    patient_name: str
    birth_date: str | None
    finding: Any | None
    recipient_name: str | None
    deadlines: breach.Deadlines | None = None
    days_left: int | None = None
    assessment: dict[str, Any] | None = None
    notice: str | None = None
    outputs: list[tuple[str, str]] = field(default_factory=list)
    signers: list[tuple[str, str]] = field(default_factory=list)
    fhir_base: str = ""  # links open what the office wrote in the EHR

    # The page says things in words (issue 12): ids only in links' hrefs.
    @property
    def decision_text(self) -> str:
        code = str(self.finding.decision if self.finding else self.task.decision or "")
        return wording.decision(code) if code in wording.DECISIONS else code

    @property
    def purposes_text(self) -> str:
        purposes = self.finding.purposes if self.finding else ()
        return "; ".join(wording.purpose(p) for p in purposes) or "none recorded"

    @property
    def reasons_text(self) -> tuple[str, ...]:
        return tuple(wording.reason(code) for code in (self.finding.reasons
                                                       if self.finding else ()))

    def link(self, reference: str) -> str:
        return f"{self.fhir_base.rstrip('/')}/{reference}"


def _chart_report(client: Any, patient: str | None) -> tuple[list[dict[str, Any]], Any]:
    from consent_gap.evaluate import evaluate

    config = _config()
    if not patient or not patient.startswith("Patient/"):
        raise FhirError("the Task names no patient")
    rules = load_rules(config.mappings) if config.mappings is not None else None
    chart = fetch_chart(client, patient.split("/", 1)[1], rules=rules)
    return chart.resources, evaluate(chart.resources, config.jurisdiction, rules=rules,
                                     base=getattr(client, "base", None))


def _finding_of(report: Any, disclosure: str | None) -> Any | None:
    return next((f for f in report.findings if f.disclosure == disclosure), None)


def _recipient_name(client: Any, resources: list[dict[str, Any]], ref: str | None) -> str | None:
    if not ref:
        return None
    names = _names(resources)
    if ref in names:
        return names[ref]
    rtype, _, rid = ref.partition("/")
    if rtype in ("Organization", "Practitioner", "PractitionerRole", "RelatedPerson", "Patient"):
        try:
            return display_name(client.read(rtype, rid))
        except (FhirError, ValueError):
            return None  # the page says "not recorded": never the id
    return None


def _detail(client: Any, resource: dict[str, Any], today: date) -> Detail:
    task = read_task(resource)
    resources, report = _chart_report(client, task.patient)
    person = (report.charts.get(task.patient) or None)
    patient = getattr(person, "patient", None)
    finding = _finding_of(report, task.focus)
    detail = Detail(task, getattr(patient, "name", None) or "unknown client",
                    str(patient.birth_date) if patient and patient.birth_date else None,
                    finding, _recipient_name(client, resources,
                                             finding.recipient if finding else None))
    detail.days_left = breach.days_left(task.deadline, today)
    detail.outputs = list(task.outputs)
    detail.fhir_base = str(getattr(client, "base", "") or "")
    detail.signers = _signers(report, task.patient)
    if task.business == "breach" and task.authored:
        answers = _assessment_answers(client, task)
        affected = int(answers.get("affected", 1)) if answers else 1
        residents = int(answers.get("state_residents", affected)) if answers else affected
        detail.deadlines = breach.deadlines(task.authored, task.deadline, affected, residents)
        detail.assessment = answers
    return detail


def _assessment_answers(client: Any, task: TaskView) -> dict[str, Any] | None:
    """The answers of the assessment the Task's output names (flattened by linkId)."""
    ref = next((r for code, r in task.outputs if code == "breach-risk-assessment"), None)
    if not ref:
        return None
    try:
        response = client.read(*ref.split("/", 1))
    except (FhirError, ValueError):
        return None
    return office.answers_of(response)


@bp.get("/worklist/task/<tid>")
@with_office
def task_page(launch: Launch, tid: str):
    today = _now().date()
    with client_for(launch) as client:
        resource = client.read("Task", tid)
        detail = _detail(client, resource, today)
    draft = session.pop("assessment_form", None) if request.args.get("again") else None
    return render_template("worklist_task.html", d=detail, dispositions=DISPOSITION_TEXT,
                           business_text=BUSINESS_TEXT, factors=breach.FACTORS,
                           ratings=breach.RATINGS, exceptions=breach.EXCEPTIONS,
                           form=draft or {}, notices=_take_notices(), today=today)


# ---------------------------------------------------------------- dispositions

def _notice(kind: str, text: str) -> None:
    session["office_notices"] = [*(session.get("office_notices") or []),
                                 {"kind": kind, "text": text}][-5:]


def _take_notices() -> list[dict[str, str]]:
    return session.pop("office_notices", None) or []


def _back(tid: str, anchor: str = "") -> Response:
    return redirect(url_for("worklist.task_page", tid=tid) + (f"#{anchor}" if anchor else ""),
                    code=303)


def _send(client: Any, bundle: dict[str, Any]) -> dict[str, Any]:
    """The transaction; ConflictingUpdate when the Task's version has moved on."""
    try:
        return client.transaction(bundle)
    except FhirHttpError as error:
        if error.status in (409, 412):
            raise office.ConflictingUpdate() from None
        raise


def _state(client: Any, tid: str) -> office.TaskState:
    """The Task at the version the officer saw (the form's), as read now; ConflictingUpdate
    when it has moved on already."""
    resource = client.read("Task", tid)
    state = office.TaskState(resource)
    if request.form.get("version") != state.version:
        raise office.ConflictingUpdate()
    return state


@bp.post("/worklist/task/<tid>/disposition")
@with_office
def disposition(launch: Launch, tid: str):
    code = request.form.get("disposition", "")
    why = (request.form.get("note") or "").strip()
    if code not in DISPOSITION_TEXT:
        _notice("error", "Choose a disposition.")
        return _back(tid, "disposition")
    if code == "not-a-disclosure" and not why:
        _notice("error", "Say why this is not a disclosure: the note is required.")
        return _back(tid, "disposition")
    now = _now()
    officer = _user(launch)
    try:
        with client_for(launch) as client:
            state = _state(client, tid)
            status, ok = _effect(client, state, code)
            if not ok:
                _notice("error", status)
                return _back(tid, "disposition")
            text = f"{DISPOSITION_TEXT[code]}. {officer or 'The privacy officer'}: " + (
                why or "no note given")
            updated = office.updated_task(state, status=status, business=code, author=officer,
                                          why=text, now=now)
            _send(client, office.disposition_transaction(state, updated, author=officer,
                                                         device=None, now=now))
    except office.ConflictingUpdate:
        log.info("worklist: conflicting update on Task %s", tid)
        _notice("error", CONFLICT)
        return _back(tid, "disposition")
    log.info("worklist: Task %s disposition %s", tid, code)
    _notice("ok", f"Recorded: {DISPOSITION_TEXT[code]}. The task is now {status}.")
    return _back(tid, "assessment" if code == "breach-assessment" else "disposition")


def _effect(client: Any, state: office.TaskState, code: str) -> tuple[str, bool]:
    """The Task's new status for the disposition, or (why not, False) when the re-check of
    the chart does not allow it (CONTRACT 7's table)."""
    if code == "not-a-disclosure":
        return "completed", True
    if code == "breach-assessment":
        return "in-progress", True
    task = read_task(state.resource)
    _resources, report = _chart_report(client, task.patient)
    finding = _finding_of(report, task.focus)
    if code == "authorization-on-file":
        if finding is None or finding.decision not in (Decision.UNAUTHORIZED, Decision.REVIEW):
            return "completed", True
        return ("The re-check still flags this disclosure as "
                f"{finding.decision}: attach the signed authorization to the chart first "
                "(a Consent, signed or with the scanned form); nothing was saved.", False)
    chart = report.charts.get(task.patient)
    documented = bool(finding and finding.documentation == Documentation.PRESENT) or bool(
        chart and task.focus in chart.documented)
    if documented:
        return "completed", True
    return ("The re-check finds no documentation of this disclosure in the chart (a final "
            "note that references it); nothing was saved.", False)


UPLOAD_LIMIT = 5 * 1024 * 1024
UPLOAD_TYPES = ("application/pdf", "image/png", "image/jpeg")


class UploadRequest(Request):
    """The app's requests: 64 KB at most, but for the scan of a signed authorization. Set at
    the start, before the CSRF check reads the form (a view's own setting would come later)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.path.startswith("/worklist/task/") and self.path.endswith("/authorization"):
            self.max_content_length = UPLOAD_LIMIT + 64 * 1024


def _signed_form(patient: str | None, signers: list[tuple[str, str]]) -> office.SignedForm:
    """The attached authorization from the form; ValueError names what is missing."""
    upload = request.files.get("file")
    data = upload.read(UPLOAD_LIMIT + 1) if upload else b""
    problems = []
    if not data or len(data) > UPLOAD_LIMIT:
        problems.append("the scan of the signed form (PDF, PNG or JPEG, at most 5 MB)")
    content_type = (upload.mimetype if upload else "") or ""
    if data and content_type not in UPLOAD_TYPES:
        problems.append("a PDF, PNG or JPEG file")
    signed = _day(request.form.get("signed"))
    expires = _day(request.form.get("expires"))
    if signed is None:
        problems.append("the date it was signed")
    if expires is None or (signed is not None and expires <= signed):
        problems.append("the date it expires (after the date signed)")
    signer = request.form.get("signer", "")
    if signer not in {ref for ref, _ in signers}:
        problems.append("who signed it")
    labels = tuple(code for code in office.SPECIFIC_LABELS if request.form.get(f"label-{code}"))
    if problems:
        raise ValueError("Missing or not valid: " + "; ".join(problems) + ".")
    name = (upload.filename or "signed authorization") if upload else "signed authorization"
    return office.SignedForm(data, content_type, name[:100], str(signed), str(expires), signer,
                             labels)


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat((text or "").strip())
    except ValueError:
        return None


def _signers(report: Any, patient: str | None) -> list[tuple[str, str]]:
    """Who may have signed: the client, or a representative the chart holds."""
    chart = report.charts.get(patient)
    out = []
    if patient:
        name = getattr(getattr(chart, "patient", None), "name", None)
        out.append((patient, f"The client ({name or patient})"))
    for ref in sorted(getattr(chart, "representatives", None) or {}):
        out.append((ref, f"A representative ({ref})"))
    return out


def _task_finding(client: Any, tid: str) -> tuple[Any, Any, list[dict[str, Any]], Any, Any]:
    """The Task as read now (its version for If-Match), what it says, its patient's chart
    decided afresh, and the finding it is about (None when the re-check no longer has it)."""
    state = _state(client, tid)
    task = read_task(state.resource)
    resources, report = _chart_report(client, task.patient)
    return state, task, resources, report, _finding_of(report, task.focus)


@bp.post("/worklist/task/<tid>/authorization")
@with_office
def authorization(launch: Launch, tid: str):
    now = _now()
    officer = _user(launch)
    config = _config()
    try:
        with client_for(launch) as client:
            state, task, _resources, report, finding = _task_finding(client, tid)
            try:
                form = _signed_form(task.patient, _signers(report, task.patient))
            except ValueError as missing:
                _notice("error", str(missing))
                return _back(tid, "authorization")
            consent = office.authorization_on_file(
                state, form, patient=task.patient or "", organization=config.organization,
                recipient=finding.recipient if finding else None,
                purposes=tuple(finding.purposes) if finding else (), now=now)
            answer = _send(client, office.creation_transaction(state, consent, author=officer,
                                                               device=None, now=now))
            attached = next((ref for ref in office.created_references(answer)
                             if ref.startswith("Consent/")), "the Consent")
            status, ok = _effect(client, state, "authorization-on-file")
            if not ok:
                _notice("error", f"The signed authorization is attached ({attached}). "
                        + status.replace("; nothing was saved.", "; the task stays open."))
                return _back(tid, "authorization")
            text = (f"{DISPOSITION_TEXT['authorization-on-file']}: {attached} attached. "
                    f"{officer or 'The privacy officer'}: "
                    + ((request.form.get('note') or '').strip() or "no note given"))
            updated = office.updated_task(state, status="completed",
                                          business="authorization-on-file", author=officer,
                                          why=text, now=now,
                                          outputs=(("authorization", attached),)
                                          if attached.startswith("Consent/") else ())
            _send(client, office.disposition_transaction(state, updated, author=officer,
                                                         device=None, now=now))
    except office.ConflictingUpdate:
        _notice("error", CONFLICT)
        return _back(tid, "authorization")
    log.info("worklist: Task %s authorization on file", tid)
    _notice("ok", f"The signed authorization is attached ({attached}) and the re-check no "
            "longer flags the disclosure: the task is completed.")
    return _back(tid, "authorization")


@bp.post("/worklist/task/<tid>/assessment")
@with_office
def assessment(launch: Launch, tid: str):
    try:
        answers = breach.read_assessment(request.form)
    except breach.AssessmentIncomplete as incomplete:
        _notice("error", str(incomplete))
        session["assessment_form"] = {k: v for k, v in request.form.items()
                                      if k != "csrf_token"}
        return redirect(url_for("worklist.task_page", tid=tid, again=1) + "#assessment",
                        code=303)
    now = _now()
    officer = _user(launch)
    config = _config()
    try:
        with client_for(launch) as client:
            state, task, resources, report, finding = _task_finding(client, tid)
            response = office.response_resource(state, answers, patient=task.patient,
                                                author=officer, now=now,
                                                occurred=finding.occurred if finding else None)
            creations = [response]
            outputs = [("breach-risk-assessment", response.full_url)]
            if answers.conclusion == "breach":
                notice = _notice_draft(client, state, task, config, now, resources, report)
                creations.append(notice)
                outputs.append(("breach-notice-draft", notice.full_url))
            dates: tuple[tuple[str, str], ...] = ()
            if answers.conclusion == "breach" and task.authored:
                due = breach.deadlines(task.authored, task.deadline, answers.affected,
                                       answers.state_residents)
                dates = (("hhs-notice-deadline", due.hhs.isoformat()),) + (
                    (("media-notice-deadline", due.media.date().isoformat()),)
                    if due.media else ())
            status = "completed" if answers.conclusion == "low-probability" else "in-progress"
            text = (f"Breach risk assessment: {answers.conclusion}. "
                    f"{officer or 'The privacy officer'}: ratings "
                    + ", ".join(f"{c} {answers.ratings[c]}" for c, _ in breach.FACTORS) + ".")
            updated = office.updated_task(state, status=status, business=answers.conclusion,
                                          author=officer, why=text, now=now,
                                          outputs=tuple(outputs), dates=dates)
            _send(client, office.disposition_transaction(
                state, updated, creations=tuple(creations), author=officer, device=None,
                now=now, with_questionnaire=True))
    except office.ConflictingUpdate:
        _notice("error", CONFLICT)
        return _back(tid, "assessment")
    log.info("worklist: Task %s assessed %s", tid, answers.conclusion)
    _notice("ok", "The assessment is recorded: " + BUSINESS_TEXT[answers.conclusion] + (
        ". The draft notice to the client is in the chart." if answers.conclusion == "breach"
        else ". The task is completed."))
    return _back(tid, "assessment")


def _notice_draft(client: Any, state: office.TaskState, task: TaskView, config: WebConfig,
                  now: datetime, resources: list[dict[str, Any]], report: Any
                  ) -> office.Creation:
    finding = _finding_of(report, task.focus)
    chart = report.charts.get(task.patient)
    client_name = getattr(getattr(chart, "patient", None), "name", None) or "the client"
    recipient = _recipient_name(client, resources, finding.recipient if finding else None)
    deadline = task.deadline or ((task.authored or now) + breach.WINDOW)
    # the client reads this notice: each record in words, never its id
    names = text_names(resources, report, load_rules(config.mappings), [finding]) \
        if finding else {}
    kinds = [named.record(names, ref) for ref in (finding.disclosed if finding else ())]
    text = office.notice_text(
        client=client_name, occurred=finding.occurred[:10] if finding else "[date]",
        discovered=(task.authored or now).date().isoformat(),
        recipient=recipient or "a recipient", kinds=kinds,
        practice=_practice_name(client, config), deadline=deadline.date().isoformat())
    return office.notice_draft(state, text, patient=task.patient, disclosure=task.focus,
                               organization=config.organization, now=now)


def _practice_name(client: Any, config: WebConfig) -> str:
    if not config.organization:
        return "The practice"
    try:
        return display_name(client.read(*config.organization.split("/", 1)))
    except (FhirError, ValueError):
        return "The practice"


# ---------------------------------------------------------------- the year's breach log

def _log_entries(client: Any, year: int) -> list[breach.LogEntry]:
    search = breach_log_search(year)
    resources = list(client.search(search.type, list(search.params)))
    names = _names([r for r in resources if r.get("resourceType") == "Patient"])
    tasks = [read_task(r) for r in resources if r.get("resourceType") == "Task"]
    entries = []
    for task in tasks:
        answers = _assessment_answers(client, task) or {}
        notice = next((r for code, r in task.outputs if code == "breach-notice-draft"), None)
        state = _notice_state(client, notice)
        entries.append(breach.LogEntry(
            task=f"Task/{task.id}", patient=names.get(task.patient or "", "unknown client"),
            disclosure=task.focus or "", occurred=str(answers.get("occurred") or "")[:10],
            discovered=task.authored.date().isoformat() if task.authored else "",
            affected=int(answers.get("affected", 1)),
            concluded=next((n.time or "" for n in reversed(task.notes)
                            if n.text.startswith("Breach risk assessment")), "")[:10],
            client_notice=f"{notice} ({state})" if notice else state, notice_state=state))
    return entries


def _notice_state(client: Any, ref: str | None) -> str:
    """The notice draft's state in words; the CSV adds its reference, the screen does not."""
    if not ref:
        return "no notice drafted"
    try:
        document = client.read(*ref.split("/", 1))
    except (FhirError, ValueError):
        return "not readable"
    return office.notice_state(document)


def _year() -> int:
    try:
        year = int(request.args.get("year") or _now().year)
    except ValueError:
        year = _now().year
    return min(max(year, 2000), 2100)


@bp.get("/worklist/breaches")
@with_office
def breach_log(launch: Launch):
    year = _year()
    with client_for(launch) as client:
        entries = _log_entries(client, year)
    return render_template("worklist_breaches.html", entries=entries, year=year,
                           csv_url=url_for("worklist.breach_log_csv", year=year))


@bp.get("/worklist/breaches.csv")
@with_office
def breach_log_csv(launch: Launch):
    year = _year()
    with client_for(launch) as client:
        entries = _log_entries(client, year)
    return Response(breach.log_csv(entries), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="breach-log-{year}.csv"'})
