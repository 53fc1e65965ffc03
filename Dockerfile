# consent-gap: the app in the chart (SMART on FHIR panel + JSON API), served by gunicorn.
#
# Build:  docker build -t consent-gap .
# Run:    docker run -p 8082:8082 \
#           -e CONSENT_GAP_ALLOWED_ISSUERS=https://ehr.example/fhir \
#           -e CONSENT_GAP_PUBLIC_URL=https://consent-gap.example \
#           -e CONSENT_GAP_SECRET_KEY=... consent-gap
# Every setting is a CONSENT_GAP_* environment variable (README). Sessions are shared by the
# workers through a SQLite file in the state volume, sealed with CONSENT_GAP_SECRET_KEY.
# Checked with hadolint (see README); no Docker engine runs on the build machines.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY plugin ./plugin
COPY mappings ./mappings
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CONSENT_GAP_STATE_DIR=/var/lib/consent-gap \
    CONSENT_GAP_SESSION_STORE=sqlite:/var/lib/consent-gap/web-sessions.db \
    GUNICORN_CMD_ARGS="--bind=0.0.0.0:8082 --workers=2 --threads=4 --timeout=60"
RUN groupadd --system --gid 10001 consentgap \
    && useradd --system --uid 10001 --gid consentgap --no-create-home \
       --home-dir /var/lib/consent-gap --shell /usr/sbin/nologin consentgap \
    && mkdir -p /var/lib/consent-gap \
    && chown consentgap:consentgap /var/lib/consent-gap
# WeasyPrint (the PDF of the accounting of disclosures) needs Debian's Pango and a font.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
       fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels /wheels/consent_gap-*.whl \
    && rm -rf /wheels
USER 10001:10001
WORKDIR /var/lib/consent-gap
VOLUME ["/var/lib/consent-gap"]
EXPOSE 8082
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8082/healthz', timeout=4).status == 200 else 1)"]
# The access log names the path only (%(U)s): query strings can carry an authorization code.
CMD ["gunicorn", "--access-logfile", "-", "--access-logformat", "%(h)s %(t)s \"%(m)s %(U)s\" %(s)s %(b)s %(M)sms", "consent_gap.web:create_app()"]
