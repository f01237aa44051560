# finrec service image: slim base, dependencies in their own layer, non-root, health-checked.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OPENBLAS_NUM_THREADS=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system finrec \
    && useradd --system --gid finrec --home-dir /srv/finrec --create-home finrec

WORKDIR /srv/finrec

# Dependencies first: this layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
RUN mkdir -p app recommenders migrations \
    && touch app/__init__.py recommenders/__init__.py migrations/__init__.py \
    && pip install . \
    && pip uninstall -y finrec

COPY app ./app
COPY recommenders ./recommenders
COPY migrations ./migrations
RUN pip install --no-deps . && mkdir -p /srv/finrec/var && chown -R finrec:finrec /srv/finrec/var

USER finrec

ENV FINREC_ENVIRONMENT=production \
    FINREC_DOCS_ENABLED=false \
    FINREC_LOG_JSON=true \
    FINREC_ARTIFACT_DIR=/srv/finrec/var/artifacts

EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1

# Migrations are a separate step, run once per release before the replicas start:
#   docker run --rm -e FINREC_DATABASE_URL=... finrec finrec db upgrade
CMD ["finrec", "serve", "--host", "0.0.0.0", "--port", "8000"]
