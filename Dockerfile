# finrec service image.
#   build:   compilers, a virtual environment with the dependencies and finrec itself
#   runtime: slim base, the virtual environment only, a fixed non-root user, health-checked
# Every FINREC_* variable is listed in docs/configuration.md; production needs at least
# FINREC_SECRET_KEY (the service refuses the development placeholder) and usually
# FINREC_DATABASE_URL (PostgreSQL when more than one replica runs).

FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# LightFM is built from source, so the build stage needs a C compiler (the runtime does not).
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/* \
    && python -m venv /opt/finrec

ENV PATH=/opt/finrec/bin:$PATH
WORKDIR /src

# Dependencies first: this layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
RUN mkdir -p app recommenders migrations \
    && touch app/__init__.py recommenders/__init__.py migrations/__init__.py \
    && pip install . \
    && pip uninstall -y finrec

COPY app ./app
COPY recommenders ./recommenders
COPY migrations ./migrations
RUN pip install --no-deps .


FROM python:3.11-slim AS runtime

ARG FINREC_UID=10001

# libgomp: the OpenMP runtime that implicit and LightFM load.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid ${FINREC_UID} finrec \
    && useradd --system --uid ${FINREC_UID} --gid finrec --home-dir /srv/finrec \
       --create-home --shell /usr/sbin/nologin finrec \
    && mkdir -p /srv/finrec/data /srv/finrec/artifacts \
    && chown finrec:finrec /srv/finrec/data /srv/finrec/artifacts

COPY --from=build /opt/finrec /opt/finrec

ENV PATH=/opt/finrec/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OPENBLAS_NUM_THREADS=1 \
    NUMBA_CACHE_DIR=/srv/finrec/.cache/numba \
    FINREC_ENVIRONMENT=production \
    FINREC_DOCS_ENABLED=false \
    FINREC_LOG_JSON=true \
    FINREC_LOG_LEVEL=INFO \
    FINREC_DATABASE_URL=sqlite:////srv/finrec/data/finrec.db \
    FINREC_ARTIFACT_DIR=/srv/finrec/artifacts

WORKDIR /srv/finrec
# The SQLite database (when no external database is configured) and the trained artifacts
# outlive the container.
VOLUME ["/srv/finrec/data", "/srv/finrec/artifacts"]

USER ${FINREC_UID}:${FINREC_UID}

EXPOSE 8000

# Liveness through the standard library: the image carries no curl. The start period covers
# the first start of a container, when the list assembly is compiled (into NUMBA_CACHE_DIR,
# a directory the service user owns) before the first request is accepted.
HEALTHCHECK --interval=15s --timeout=3s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]

# Migrations are a separate step, run once per release before the replicas start:
#   docker run --rm -e FINREC_DATABASE_URL=... -e FINREC_SECRET_KEY=... finrec db upgrade
ENTRYPOINT ["finrec"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
