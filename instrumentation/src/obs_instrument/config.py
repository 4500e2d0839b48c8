"""Settings read from the environment (every one can also be passed to `instrument_app`)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_OTLP_ENDPOINT = "http://otelcol:4318"


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        return default


def read_secret(name: str) -> str | None:
    """`NAME_FILE` (a mounted secret file) wins over `NAME`."""
    path = os.environ.get(f"{name}_FILE", "").strip()
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                value = f.read().strip()
            return value or None
        except OSError:
            return None
    value = os.environ.get(name, "").strip()
    return value or None


@dataclass
class Settings:
    service_name: str = "fastapi-app"
    service_version: str = "0.0.0"
    environment: str = "local"
    otlp_endpoint: str = DEFAULT_OTLP_ENDPOINT
    otlp_enabled: bool = True
    log_level: str = "INFO"
    access_log: bool = True
    exclude_paths: frozenset[str] = field(default_factory=lambda: frozenset({"/metrics", "/healthz"}))
    slow_query_seconds: float = 1.0
    user_id_salt: str | None = None

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        s = cls(
            service_name=os.environ.get("OTEL_SERVICE_NAME", "").strip() or cls.service_name,
            service_version=os.environ.get("SERVICE_VERSION", "").strip() or cls.service_version,
            environment=os.environ.get("DEPLOYMENT_ENVIRONMENT", "").strip() or cls.environment,
            otlp_endpoint=(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or DEFAULT_OTLP_ENDPOINT).rstrip("/"),
            otlp_enabled=env_bool("OBS_OTLP_ENABLED", True) and not env_bool("OTEL_SDK_DISABLED", False),
            log_level=(os.environ.get("OBS_LOG_LEVEL", "").strip() or "INFO").upper(),
            access_log=env_bool("OBS_ACCESS_LOG", True),
            slow_query_seconds=env_float("OBS_DB_SLOW_QUERY_SECONDS", 1.0),
            user_id_salt=read_secret("OBS_USER_ID_SALT"),
        )
        for k, v in overrides.items():
            if v is None:
                continue
            if not hasattr(s, k):
                raise TypeError(f"unknown setting {k!r}")
            if k == "exclude_paths":
                v = frozenset(v)
            setattr(s, k, v)
        return s
