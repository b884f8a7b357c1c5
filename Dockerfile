# syntax=docker/dockerfile:1
# The connector as a container job: settings from SPOTIFY_ADS_* variables, state under /data.
#   docker build -t spotify-audience-sync:0.1.0 .
#   docker run --rm --env-file spotify.env -v sas-data:/data -v "$PWD:/in:ro" \
#     spotify-audience-sync:0.1.0 sync /in/segment.csv --audience-name "My segment"
# See docs/container.md. tests/test_container.py lints this file and replays its install steps.

# --- build: resolve nothing, install exactly uv.lock into /app/.venv -------------------------
FROM python:3.11.14-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
# A C compiler for the one extension (src/spotify_audience_sync/_native/, the pipeline's hot
# loops); only the built virtual environment reaches the runtime image. Unpinned on purpose:
# Debian's point releases replace these versions, and a pin would break the build each time.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, in their own layer: it is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
# Then the project itself, as a wheel (not editable): the image needs no source tree.
COPY README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# --- run: the same Python, the virtual environment, a non-root user, nothing secret ---------
FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.title="spotify-audience-sync" \
      org.opencontainers.image.description="Keep a Spotify customer-list audience equal to a segment (Mirror sync)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 sync \
    && useradd --system --uid 10001 --gid sync --home-dir /data --no-create-home sync \
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
