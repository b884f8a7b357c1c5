# syntax=docker/dockerfile:1
# The connector as a container job: settings from SPOTIFY_ADS_* variables, state under /data.
#   docker build -t spotify-audience-sync:0.1.0 .
#   docker run --rm --env-file spotify.env -v sas-data:/data -v "$PWD:/in:ro" \
#     spotify-audience-sync:0.1.0 sync /in/segment.csv --audience-name "My segment"
# See docs/container.md. tests/test_container.py lints this file and replays its install steps;
# tests/test_container_run.py runs the built image (.ci/run builds it with podman).

# The base of both stages. The official image by default; any Debian bookworm image with
# Python 3.11 (and its venv module) works too, e.g. one made with mmdebstrap from Debian's
# packages where no registry is reachable (docs/container.md, "Building without a registry").
ARG BASE_IMAGE=python:3.11.14-slim-bookworm

# --- build: resolve nothing, install exactly uv.lock into /app/.venv -------------------------
FROM ${BASE_IMAGE} AS build
# uv comes from PyPI, pinned, like every other tool: no second registry to reach.
# UV_NATIVE_TLS and PIP_CERT make uv and pip trust the image's CA store (on the official image
# the same roots they bundle; where a proxy re-signs TLS, the host's bundle mounted over it).
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3.11 \
    UV_NATIVE_TLS=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A C compiler for the one extension (src/spotify_audience_sync/_native/, the pipeline's hot
# loops); only the built virtual environment reaches the runtime image. The official image has
# Python's headers; Debian's python3.11 needs python3.11-dev for them. Unpinned on purpose:
# Debian's point releases replace these versions, and a pin would break the build each time.
# hadolint ignore=DL3008
RUN set -- gcc libc6-dev \
    && headers="$(python3.11 -c 'import sysconfig; print(sysconfig.get_path("include"))')" \
    && if [ ! -e "$headers/Python.h" ]; then set -- "$@" python3.11-dev; fi \
    && apt-get update \
    && apt-get install -y --no-install-recommends "$@" \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# uv into a virtual environment of its own (Debian's Python has no pip outside one), checked
# against the wheel hashes in requirements/uv.txt: a substituted wheel fails the build.
COPY requirements/uv.txt requirements/build-constraints.txt ./requirements/
RUN python3.11 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir --require-hashes -r requirements/uv.txt \
    && ln -s /opt/uv/bin/uv /usr/local/bin/uv
# Dependencies first, in their own layer: it is rebuilt only when the lock changes. The core
# (PostgreSQL included), [mysql] (PyMySQL, pure Python) and [cloud] (obstore: s3://, gs://
# inputs); not [duckdb] (69 MB).
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --extra mysql --extra cloud --no-install-project
# The build backend is outside uv.lock: installed hash-checked from its constraints file, then
# the project is built with exactly it (no build isolation fetching another setuptools). Its
# own RUN, as every uv step, so tests/test_container.py can replay each one.
# hadolint ignore=DL3059
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python /app/.venv/bin/python --require-hashes \
      -r requirements/build-constraints.txt
# Then the project itself, as a wheel (not editable): the image needs no source tree. An exact
# sync: uv builds the wheel with the setuptools above, then removes setuptools (outside the
# lock, 8 MB the tool never imports) from the venv the image ships.
COPY README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --extra mysql --extra cloud --no-editable --no-build-isolation
# What the tool never reads, out of the image (~50 MB with its bytecode): phonenumbers'
# geocoding, carrier and time-zone tables (its "lite" subset; parsing and validation read
# data/ only) and the test suites numpy ships.
RUN site=/app/.venv/lib/python3.11/site-packages \
    && rm -rf "$site/phonenumbers/geodata" "$site/phonenumbers/carrierdata" \
       "$site/phonenumbers/tzdata" "$site/numpy/tests" "$site"/numpy/*/tests

# --- run: the same Python, the virtual environment, a non-root user, nothing secret ---------
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="spotify-audience-sync" \
      org.opencontainers.image.description="Keep a Spotify customer-list audience equal to a segment (Mirror sync)" \
      org.opencontainers.image.licenses="Apache-2.0"
# "app", not "sync": Debian's base-passwd already has a user sync (uid 4).
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin app \
    && mkdir -p /data/state \
    && chown -R 10001:10001 /data
COPY --from=build /app/.venv /app/.venv
# DL3064 flags the word TOKEN: SPOTIFY_ADS_TOKEN_STORE is a path, not a secret. Secrets come
# from the environment at run time (--env-file, a Kubernetes Secret), never from the image.
# hadolint ignore=DL3064
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SPOTIFY_ADS_TOKEN_STORE=/data/tokens.json \
    SPOTIFY_ADS_STATE_DIR=/data/state
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
ENTRYPOINT ["spotify-audience-sync"]
CMD ["--help"]
