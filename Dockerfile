# chatbot in a container: runs `chatbot run` with its state in the /data volume.
#   docker build -t chatbot .
#   docker run -d --name chatbot -v chatbot-data:/data -v "$PWD/schedules:/schedules:ro" \
#     -v "$PWD/config.yaml:/config/config.yaml:ro" -e CHATBOT_MASTODON_TOKEN=... chatbot
# In config.yaml set data_dir: /data and schedules: /schedules.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CHATBOT_CONFIG=/config/config.yaml

WORKDIR /app
COPY pyproject.toml README.md ./
COPY chatbot ./chatbot
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin chatbot \
    && mkdir -p /data /config /schedules \
    && chown chatbot /data

USER chatbot
VOLUME ["/data"]
# SIGTERM lets the post in flight finish and be recorded; it exits within 10 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["chatbot"]
CMD ["run"]
