"""Started as root with a volume to own (Railway: RAILWAY_RUN_UID=0, because Railway mounts volumes owned by
root): give the volume's directories to the image's user (OBS_RUN_AS, set in exporters/Dockerfile) and drop to
it before anything else runs, as obs-start does for the other images (docs/railway.md). Under compose the
process already runs as that user, and none of this happens."""

from __future__ import annotations

import os
from typing import Mapping

from obs_bridges import config

# Settings naming a directory the process writes, handed to the user before it drops.
OWNED_DIRS = ("RAILWAY_LOGS_STATE_DIR",)


def parse_run_as(raw: str) -> tuple[int, int]:
    try:
        uid, _, gid = raw.partition(":")
        u, g = int(uid), int(gid or uid)
    except ValueError:
        raise config.ConfigError(f"OBS_RUN_AS must be <uid>:<gid> (numbers), got {raw[:40]!r}") from None
    if u <= 0 or g <= 0:
        raise config.ConfigError(f"OBS_RUN_AS must name a non-root user, got {raw[:40]!r}")
    return u, g


def drop_if_root(env: Mapping[str, str]) -> tuple[int, int] | None:
    """(uid, gid) dropped to, or None when not root or OBS_RUN_AS is unset. ConfigError when it cannot."""
    raw = (env.get("OBS_RUN_AS") or "").strip()
    if os.getuid() != 0 or not raw:
        return None
    uid, gid = parse_run_as(raw)
    for name in OWNED_DIRS:
        path = (env.get(name) or "").strip()
        if not path:
            continue
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
            os.chown(path, uid, gid)
            for entry in os.scandir(path):  # the files the previous deployment left (the cursor)
                if entry.is_file(follow_symlinks=False):
                    os.chown(entry.path, uid, gid)
        except OSError as e:
            raise config.ConfigError(f"{name} ({path}) cannot be given to uid {uid} ({e.strerror or e}): "
                                     "mount the volume there, or unset RAILWAY_RUN_UID") from None
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    return uid, gid
