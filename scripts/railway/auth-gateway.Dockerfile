# The optional auth gateway (scripts/railway/auth_gateway.py) as an image, for Railway only: it gets the
# public domain and forwards authenticated requests to a private Prometheus or Alertmanager
# (docs/railway.md, "Exposing Prometheus or Alertmanager"). Standard library only, no state on disk.
# Its modules (gateway_*.py) go next to it in /app, where `python /app/auth_gateway.py` imports them from.
# Build from the repo root: docker build -f scripts/railway/auth-gateway.Dockerfile .
# The ARG default must equal PYTHON_IMAGE_VERSION in .env (tests/railway enforce it).
ARG PYTHON_IMAGE_VERSION=3.12.12-slim-bookworm
FROM python:${PYTHON_IMAGE_VERSION}
COPY scripts/railway/auth_gateway.py scripts/railway/gateway_config.py scripts/railway/gateway_http.py \
     scripts/railway/gateway_limits.py scripts/railway/gateway_proxy.py scripts/railway/gateway_upstream.py /app/
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PORT=8080
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["python", "/app/auth_gateway.py"]
