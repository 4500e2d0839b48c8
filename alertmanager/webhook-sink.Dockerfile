# The demo notification receiver (alertmanager/webhook_sink.py) as an image, for Railway, where nothing can
# be bind-mounted (docs/railway.md). Compose runs the same file in the stock python image.
# Build from the repo root: docker build -f alertmanager/webhook-sink.Dockerfile .
# The ARG default must equal PYTHON_IMAGE_VERSION in .env (tests/railway enforce it).
ARG PYTHON_IMAGE_VERSION=3.12.12-slim-bookworm
FROM python:${PYTHON_IMAGE_VERSION}
COPY alertmanager/webhook_sink.py /app/webhook_sink.py
ENV PYTHONUNBUFFERED=1 SINK_PORT=9097
USER 10001:10001
EXPOSE 9097
ENTRYPOINT ["python", "/app/webhook_sink.py"]
