# civicdesk in a container: `civicdesk serve` as a non-root user on a slim Python base.
#
#   docker build -t civicdesk .
#   docker run -p 8080:8080 -v ./knowledge:/srv/civicdesk/knowledge civicdesk
#
# The knowledge folder (the FAQ YAML files) and the data folder (the SQLite file, when no
# DATABASE_URL is given) are volumes; compose.yaml runs it with PostgreSQL, a web and a worker
# process. Settings come from the environment as everywhere (docs/operations.md).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the package and every extra into a virtualenv, copied alone into the image below ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
RUN python -m venv /opt/civicdesk \
    && /opt/civicdesk/bin/pip install ".[all]"

# --- run ----------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --home-dir /srv/civicdesk --create-home \
        --shell /usr/sbin/nologin civicdesk \
    && mkdir -p /srv/civicdesk/data \
    && chown civicdesk:civicdesk /srv/civicdesk/data
COPY --from=build /opt/civicdesk /opt/civicdesk
COPY --chown=civicdesk:civicdesk knowledge /srv/civicdesk/knowledge
ENV PATH=/opt/civicdesk/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CIVICDESK_HOST=0.0.0.0 \
    CIVICDESK_PORT=8080 \
    CIVICDESK_KNOWLEDGE=/srv/civicdesk/knowledge \
    DATABASE_URL=sqlite:////srv/civicdesk/data/civicdesk.db
WORKDIR /srv/civicdesk
USER civicdesk
VOLUME ["/srv/civicdesk/knowledge", "/srv/civicdesk/data"]
EXPOSE 8080
# /healthz answers while the process runs (/readyz also checks the database and the knowledge).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CIVICDESK_PORT', '8080'), timeout=4)"]
# SIGTERM is civicdesk's graceful stop: requests finish, claimed work is finished or released.
STOPSIGNAL SIGTERM
CMD ["civicdesk", "serve"]
