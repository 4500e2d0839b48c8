"""Settings from environment variables and ``*_FILE`` secret files, validated at start."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple
from urllib.parse import urlsplit

from obs_bridges import log

DEMO_ENV = "OBS_DEMO_SIMULATOR_URL"
DEMO_TOKEN = "demo-token"


@dataclass(frozen=True)
class DemoPlatform:
    """What demo mode means for one platform: where the simulator serves its API (simulator/server.py)
    and the values that stand in for settings a live deployment must give. The one place the bridges
    learn anything about the simulator."""

    path: str  # the platform's API, appended to OBS_DEMO_SIMULATOR_URL
    repositories: tuple[str, ...] = ()  # GitHub: GITHUB_REPOSITORIES when unset (the simulator's organization)
    team_id: str | None = None  # Vercel: VERCEL_TEAM_ID when unset (the simulator's team)
    metrics_template: str | None = None  # Supabase: SUPABASE_METRICS_URL_TEMPLATE when unset, from the URL


DEMO: Mapping[str, DemoPlatform] = MappingProxyType({
    "railway": DemoPlatform("/railway/graphql/v2"),
    "vercel": DemoPlatform("/vercel", team_id="team_demo"),
    "supabase": DemoPlatform("/supabase",
                             metrics_template="/supabase-metrics/{ref}/customer/v1/privileged/metrics"),
    "github": DemoPlatform("/github", repositories=("demo-org",)),
})

# Whole-response bounds (issue 12): a decompressed body larger than this is refused (a gzip bomb), by
# default; HTTP_MAX_RESPONSE_BYTES may set 64 KiB to 1 GiB.
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
MIN_MAX_RESPONSE_BYTES, MAX_MAX_RESPONSE_BYTES = 64 * 1024, 1024 * 1024 * 1024
DEFAULT_PORTS = {"railway": 9601, "vercel": 9602, "supabase": 9603, "github": 9604, "simulator": 8600}


class ConfigError(Exception):
    """Invalid configuration: the process exits with status 2 and this message."""


def _get(env: Mapping[str, str], name: str) -> str | None:
    v = env.get(name)
    if v is None:
        return None
    v = v.strip()
    return v or None


# The stack's one rule for booleans (obs_instrument.config.env_bool is the same): these spellings, any case;
# unset or blank is the default; anything else is an error, never a silent default.
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


def env_bool(env, name: str, default: bool) -> bool:
    raw = _get(env, name)
    if raw is None:
        return default
    if raw.lower() in TRUE:
        return True
    if raw.lower() in FALSE:
        return False
    raise ConfigError(f"{name} must be true or false (1/0, yes/no, on/off), got {raw[:40]!r}")


def env_int(env, name, default, lo=None, hi=None) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {v}")
    return v


def env_float(env, name, default, lo=None, hi=None) -> float:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        v = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if v != v or (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {raw}")
    return v


def env_list(env, name) -> list[str]:
    raw = _get(env, name)
    if raw is None:
        return []
    return [p.strip() for p in re.split(r"[,\s]+", raw) if p.strip()]


def env_url(env, name, default) -> str:
    raw = _get(env, name) or default
    check_url(name, raw)
    return raw.rstrip("/")


def check_url(name: str, raw: str) -> None:
    try:
        parts = urlsplit(raw)
    except ValueError:
        raise ConfigError(f"{name} is not a valid URL: {raw!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an http(s) URL like https://host/path, got {raw!r}")


class SecretRead(NamedTuple):
    value: str | None
    problem: str | None  # what is wrong, naming the variable and file, never the value
    state: str  # ok, unset, missing, empty or unreadable


class SecretSource:
    """A token read from ``NAME`` or from the file named by ``NAME_FILE``.

    The file is re-read on every ``get()`` so that a rotated or late-mounted secret is picked up
    without a restart. Problems are reported as text naming the variable, never the value.
    A file that exists but cannot be read (permissions, a directory, a dangling link ...) is
    ``unreadable``: unlike a missing or empty file it never means "no token" (see ``common``).
    """

    def __init__(self, env: Mapping[str, str], name: str):
        self.name = name
        self._value = _get(env, name)
        self.file = _get(env, name + "_FILE")
        self.reported: str | None = None  # the unreadable-file problem last logged (core.require_secret)
        if self._value:
            log.register_secret(self._value)

    @property
    def configured(self) -> bool:
        return bool(self._value or self.file)

    def get(self) -> tuple[str | None, str | None]:
        r = self.read()
        return r.value, r.problem

    def read(self) -> SecretRead:
        if self.file:
            return self._read_file()
        if self._value:
            return SecretRead(self._value, None, "ok")
        return SecretRead(None, f"{self.name} is not set: set {self.name} or {self.name}_FILE", "unset")

    def _read_file(self) -> SecretRead:
        var, path = f"{self.name}_FILE", self.file
        try:
            os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return SecretRead(None, f"cannot read {var} ({path}): it does not exist", "missing")
        except OSError as e:  # e.g. a folder on the way this uid cannot search: it may well exist
            return self._unreadable(e.strerror or str(e))
        try:
            # stat first: a directory or FIFO is no token (and opening a FIFO would block the poll)
            if not stat.S_ISREG(os.stat(path).st_mode):
                return self._unreadable("not a regular file")
            with open(path, "rb") as fh:
                v = fh.read().decode("utf-8").strip()
        except FileNotFoundError:
            return self._unreadable("a dangling symbolic link" if os.path.lexists(path) else "removed while read")
        except OSError as e:
            return self._unreadable(e.strerror or str(e))
        except UnicodeDecodeError:
            return self._unreadable("not UTF-8 text")
        if not v:
            return SecretRead(None, f"{var} ({path}) is empty: put the token in it", "empty")
        log.register_secret(v)
        return SecretRead(v, None, "ok")

    def _unreadable(self, why: str) -> SecretRead:
        uid, gid, path = os.getuid(), os.getgid(), self.file
        return SecretRead(None, f"{self.name}_FILE names {path}, which uid {uid} cannot read ({why}); no data until "
                          f"it can (an existing file never means demo mode). Make it a regular file uid {uid} can "
                          f"read: chmod 0644 {path} (or chown {uid}, or chgrp {gid} and chmod 0640)", "unreadable")


class FixedSecret(SecretSource):
    def __init__(self, name: str, value: str):
        self.name = name
        self._value = value
        self.file = None
        self.reported = None


@dataclass
class Common:
    platform: str
    listen_addr: str
    listen_port: int
    log_level: str
    http_timeout: float
    api_url: str
    token: SecretSource
    demo: bool
    # The platform's own settings, a frozen dataclass built by the bridge's load_settings
    # (github.GithubSettings, vercel.VercelSettings, railway.RailwaySettings, supabase.SupabaseSettings).
    platform_settings: Any = None
    # Whole-response bounds (issue 12): decompressed bytes, and seconds for the whole body.
    http_max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    http_deadline: float = 30.0
    # Demo mode only: the simulator's base URL (OBS_DEMO_SIMULATOR_URL, no trailing slash).
    demo_base: str | None = None

    @property
    def demo_defaults(self) -> DemoPlatform | None:
        """The platform's demo-table row in demo mode, else None."""
        return DEMO[self.platform] if self.demo else None

    def demo_url(self, path: str) -> str:
        """``path`` on the simulator (demo mode only)."""
        if self.demo_base is None:
            raise ValueError("demo_url is only defined in demo mode")
        return self.demo_base + path


def common(platform: str, env: Mapping[str, str], url_var: str, token_var: str, real_url: str) -> Common:
    """Read the settings every exporter shares and decide demo versus live mode.

    Live mode: the token (or its _FILE) is set, or its _FILE exists but cannot be read; the API URL is
    ``<URL_VAR>`` or the real API.
    Demo mode: no token and ``OBS_DEMO_SIMULATOR_URL`` set; the simulator URL and a demo token
    are used and every series gets the label ``demo="true"``.
    """
    listen_addr = _get(env, "LISTEN_ADDR") or "0.0.0.0"
    port = env_int(env, "LISTEN_PORT", DEFAULT_PORTS[platform], 1, 65535)
    level = (_get(env, "LOG_LEVEL") or "info").lower()
    if level not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"LOG_LEVEL must be one of debug, info, warning, error, got {level!r}")
    timeout = env_float(env, "HTTP_TIMEOUT_SECONDS", 10.0, 0.1, 300)
    token = SecretSource(env, token_var)
    demo_base = _get(env, DEMO_ENV)
    demo = False
    # A *_FILE that is missing or empty counts as "no token" here, so compose can always mount the secret
    # file and demo mode still applies until a token is written into it (then restart the exporter).
    # One that exists but cannot be read is a token the operator meant to give: live mode, never demo
    # data; polls fail with reason token_unreadable until the file is readable.
    read = token.read()
    if read.value is not None or read.state == "unreadable" or (token.configured and not demo_base):
        api_url = env_url(env, url_var, real_url)
    elif demo_base:
        check_url(DEMO_ENV, demo_base)
        demo_base = demo_base.rstrip("/")
        api_url = demo_base + DEMO[platform].path
        token = FixedSecret(token_var, DEMO_TOKEN)
        demo = True
    else:
        api_url = env_url(env, url_var, real_url)
    max_bytes = env_int(env, "HTTP_MAX_RESPONSE_BYTES", DEFAULT_MAX_RESPONSE_BYTES, MIN_MAX_RESPONSE_BYTES,
                        MAX_MAX_RESPONSE_BYTES)
    deadline = env_float(env, "HTTP_DEADLINE_SECONDS", max(30.0, 3 * timeout), 1.0, 3600.0)
    return Common(platform, listen_addr, port, level, timeout, api_url, token, demo,
                  http_max_response_bytes=max_bytes, http_deadline=deadline,
                  demo_base=demo_base if demo else None)
