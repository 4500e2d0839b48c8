"""Settings read from the environment (every one can also be passed to `instrument_app`)."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

DEFAULT_OTLP_ENDPOINT = "http://otelcol:4318"


TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


class ConfigError(ValueError):
    """A setting with a value that cannot be used: the message names it and says how to fix it."""


def env_bool(name: str, default: bool) -> bool:
    """The one rule for booleans (the demo app reads OBS_INSTRUMENT with it): 1/true/yes/on or
    0/false/no/off, any case; unset or blank is the default.
    Anything else is an error, never a silent default."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ConfigError(f"{name} must be true or false (1/0, yes/no, on/off), got {raw.strip()[:40]!r}")


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a non-negative number of seconds, got {raw[:40]!r}")
    return value


def read_secret(name: str) -> str | None:
    """`NAME_FILE` (a mounted secret file) wins over `NAME`. A file that is set but cannot be read, or is
    empty, is an error: falling back to no secret would silently weaken what the secret protects."""
    path = os.environ.get(f"{name}_FILE", "").strip()
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                value = f.read().strip()
        except OSError as e:
            raise ConfigError(f"{name}_FILE={path} cannot be read ({e.strerror}); make it readable by uid "
                              f"{os.getuid()} or unset {name}_FILE") from None
        if not value:
            raise ConfigError(f"{name}_FILE={path} is empty; write the secret into it or unset {name}_FILE")
        return value
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
