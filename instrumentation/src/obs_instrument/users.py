"""Pseudonymous user ids: a keyed hash (HMAC-SHA256 with a secret salt), never the raw id.

The salt comes from `OBS_USER_ID_SALT_FILE` (a mounted secret) or `OBS_USER_ID_SALT`. Without one, a
random salt is drawn per process: hashes still correlate within a process's logs and traces but not
across restarts, and a warning says so. User ids never become metric labels (unbounded cardinality).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

log = logging.getLogger("obs_instrument")


class UserHasher:
    def __init__(self, salt: str | None):
        if not salt:
            log.warning("no OBS_USER_ID_SALT configured: user hashes are stable only within this process")
            salt = secrets.token_hex(32)
        self._key = salt.encode()

    def __call__(self, user_id: object) -> str:
        digest = hmac.new(self._key, str(user_id).encode(), hashlib.sha256).hexdigest()
        return digest[:32]
