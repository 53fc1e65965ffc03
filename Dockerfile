# consent-gap: the app in the chart (SMART on FHIR panel + JSON API), served by gunicorn; the
# same image runs the nightly scan's scheduler (command: consent-gap schedule).
#
# Build:  docker build -t consent-gap .     (--build-arg BASE=IMAGE: any Debian-based image with
#         Python 3.11+ and its venv module; default the official python image; scripts/image-check
#         builds one from Debian packages, then this file on it, and runs the result)
# Run:    docker run -p 8082:8082 -v consent-gap:/var/lib/consent-gap \
#           -e CONSENT_GAP_ALLOWED_ISSUERS=https://ehr.example/fhir \
#           -e CONSENT_GAP_PUBLIC_URL=https://consent-gap.example \
#           -e CONSENT_GAP_SECRET_KEY=... consent-gap
#         docker run -v consent-gap:/var/lib/consent-gap -e CONSENT_GAP_FHIR_BASE=... \
#           consent-gap consent-gap schedule                   (the scheduler, same volume)
# Every setting is a CONSENT_GAP_* environment variable (README, "Deployment"). The checkpoint,
# the scheduler's job store and the app's sessions share one database: a SQLite file in the
# volume unless CONSENT_GAP_DATABASE_URL names another (PostgreSQL: the driver is installed).
# PORT sets the port gunicorn listens on, and the HEALTHCHECK follows it.

ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
# Where pip finds packages: PyPI unless told otherwise. A build without a registry (CI:
# scripts/image-check) passes PIP_NO_INDEX=1 and PIP_FIND_LINKS=<a local wheelhouse URL>.
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS
WORKDIR /src
COPY pyproject.toml setup.cfg README.md constraints.txt ./
COPY plugin ./plugin
COPY mappings ./mappings
# The versions the tests passed with (constraints.txt), the PostgreSQL driver included. A venv:
# Debian's own Python refuses pip in the system (PEP 668), the official image does not mind.
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip wheel --no-cache-dir --constraint constraints.txt --wheel-dir /wheels \
       '.[postgresql]'

FROM ${BASE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/consent-gap/bin:$PATH \
    PORT=8082 \
    CONSENT_GAP_STATE_DIR=/var/lib/consent-gap \
    CONSENT_GAP_SESSION_STORE=database \
    GUNICORN_CMD_ARGS="--workers=2 --threads=4 --timeout=60"
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
RUN python3 -m venv /opt/consent-gap \
    && /opt/consent-gap/bin/pip install --no-cache-dir --no-index --find-links=/wheels \
       "$(ls /wheels/consent_gap-*.whl)[postgresql]" \
    && rm -rf /wheels
USER 10001:10001
WORKDIR /var/lib/consent-gap
VOLUME ["/var/lib/consent-gap"]
EXPOSE 8082
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python3", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8082'), timeout=4).status == 200 else 1)"]
# gunicorn binds 0.0.0.0:$PORT. The access log names the path only (%(U)s): query strings can
# carry an authorization code.
CMD ["gunicorn", "--access-logfile", "-", "--access-logformat", "%(h)s %(t)s \"%(m)s %(U)s\" %(s)s %(b)s %(M)sms", "consent_gap.web:create_app()"]
