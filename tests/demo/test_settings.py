"""obs_instrument's settings from the environment: one rule for booleans, and a bad value or an unreadable
secret file is an error that names the setting and the fix, never a silent fallback (issue 14 part 5)."""
from __future__ import annotations

import os

import pytest

from obs_instrument.config import ConfigError, Settings, env_bool, env_float, read_secret


@pytest.mark.parametrize("raw,want", [("1", True), ("TRUE", True), (" yes ", True), ("On", True), ("0", False),
                                      ("false", False), ("No", False), ("off", False), ("", None), (None, None)])
def test_booleans(monkeypatch, raw, want):
    if raw is None:
        monkeypatch.delenv("OBS_X", raising=False)
    else:
        monkeypatch.setenv("OBS_X", raw)
    assert env_bool("OBS_X", True) is (True if want is None else want)
    assert env_bool("OBS_X", False) is (False if want is None else want)


@pytest.mark.parametrize("raw", ["maybe", "2", "enabled", "tru"])
def test_a_bad_boolean_is_an_error(monkeypatch, raw):
    monkeypatch.setenv("OBS_ACCESS_LOG", raw)
    with pytest.raises(ConfigError, match=r"OBS_ACCESS_LOG must be true or false"):
        Settings.from_env()


@pytest.mark.parametrize("raw", ["fast", "nan", "inf", "-1"])
def test_a_bad_number_is_an_error(monkeypatch, raw):
    monkeypatch.setenv("OBS_DB_SLOW_QUERY_SECONDS", raw)
    with pytest.raises(ConfigError, match="OBS_DB_SLOW_QUERY_SECONDS must be a non-negative number"):
        env_float("OBS_DB_SLOW_QUERY_SECONDS", 1.0)


def test_secret_file_wins_and_plain_value_is_the_fallback(monkeypatch, tmp_path):
    f = tmp_path / "salt"
    f.write_text("from-file\n")
    monkeypatch.setenv("OBS_USER_ID_SALT", "from-env")
    assert read_secret("OBS_USER_ID_SALT") == "from-env"
    monkeypatch.setenv("OBS_USER_ID_SALT_FILE", str(f))
    assert read_secret("OBS_USER_ID_SALT") == "from-file"


@pytest.mark.parametrize("case", ["missing", "empty", "unreadable"])
def test_an_unusable_secret_file_is_an_error_never_a_fallback(monkeypatch, tmp_path, case):
    f = tmp_path / "salt"
    if case == "empty":
        f.write_text("  \n")
    elif case == "unreadable":
        f.write_text("s3cret-value")
        f.chmod(0)
        if os.access(f, os.R_OK):  # root reads anything: make it a directory, which open() refuses too
            f.chmod(0o600)
            f.unlink()
            f.mkdir()
    monkeypatch.setenv("OBS_USER_ID_SALT", "would-be-fallback")
    monkeypatch.setenv("OBS_USER_ID_SALT_FILE", str(f))
    with pytest.raises(ConfigError) as e:
        Settings.from_env()
    msg = str(e.value)
    assert "OBS_USER_ID_SALT_FILE" in msg and str(f) in msg and "s3cret" not in msg and "would-be" not in msg
