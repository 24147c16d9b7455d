# syntax=docker/dockerfile:1
# chatbot in a container: `chatbot run` as uid 10001, its state in the /data volume.
#   docker build -t chatbot .
#   docker compose -f deploy/compose.sqlite.yaml up -d     (see README: Deploying)
# The image runs with a read-only root filesystem: only /data (a volume) and /tmp
# (a tmpfs) need to be writable. Secrets come at run time, never at build time.

# --- build: every wheel the bot needs, built or downloaded here -----------------------
FROM python:3.11-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY chatbot ./chatbot
# pip's cache is a BuildKit cache mount: it speeds up rebuilds and is in no layer.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel --wheel-dir /wheels .

# --- runtime: a virtualenv installed from those wheels, and nothing else ---------------
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/chatbot/bin:$PATH \
    HOME=/data \
    MPLCONFIGDIR=/tmp/matplotlib \
    CHATBOT_CONFIG=/config/config.yaml

# The wheels are bind-mounted from the build stage, so no layer keeps them, and pip
# keeps no cache: the image holds the installed packages only.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/chatbot \
    && /opt/chatbot/bin/pip install --no-cache-dir --no-index --find-links=/wheels /wheels/chatbot-*.whl \
    && /opt/chatbot/bin/pip uninstall --yes pip \
    && groupadd --system --gid 10001 chatbot \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin chatbot \
    && mkdir -p /data/archives /config /schedules \
    && chown -R 10001:10001 /data \
    && chmod 0700 /data

# Numeric, so that a runtime can check it is not root (Kubernetes runAsNonRoot).
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# Prometheus metrics, when the config sets metrics: {port: 9464, address: 0.0.0.0}.
EXPOSE 9464

# Reads the store only (heartbeat, overdue steps, refused accounts, unreadable answers,
# lost leases); exit 1 names the cause. A bot that stopped beating fails it within 30 s.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["chatbot", "health"]

# SIGTERM (docker stop) lets the post in flight finish and be recorded, hands this
# replica's leases over, and exits 0 within 10 s, before Docker's SIGKILL.
STOPSIGNAL SIGTERM
ENTRYPOINT ["chatbot"]
CMD ["run"]
