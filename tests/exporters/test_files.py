"""obs_bridges.files.write_atomic: readers see the old file or the new one, with the mode asked for."""
from __future__ import annotations

import os
import stat

import pytest

from obs_bridges.files import write_atomic


def test_replaces_whole_file_and_sets_mode_of_an_existing_file(tmp_path):
    f = tmp_path / "key"
    f.write_text("old-secret")
    f.chmod(0o644)
    ino = f.stat().st_ino
    write_atomic(str(f), "new-secret", mode=0o600)
    assert f.read_text() == "new-secret"
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert f.stat().st_ino != ino, "a new inode: a reader holding the old file never sees it change"
    assert os.listdir(tmp_path) == ["key"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    f = tmp_path / "targets.json"
    f.write_text("[]\n")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(str(f), "\ud800 not encodable", mode=0o640)
    assert f.read_text() == "[]\n"
    assert os.listdir(tmp_path) == ["targets.json"]


def test_does_not_follow_a_planted_temporary_symlink(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    f = tmp_path / "key"
    (tmp_path / f".key.{os.getpid()}.tmp").symlink_to(victim)
    with pytest.raises(OSError):
        write_atomic(str(f), "secret")
    assert victim.read_text() == "untouched"
    assert not f.exists()


def test_group_of_dir_takes_the_directory_group(tmp_path):
    d = tmp_path / "shared"
    d.mkdir()
    # A group other than ours, so that the file (created with our group) must be moved to it.
    others = [g for g in os.getgroups() if g != os.getegid()]
    gid = 4242 if os.geteuid() == 0 else (others[0] if others else None)
    if gid is None:
        pytest.skip("needs root or a second group to give the directory another group than the writer's")
    os.chown(d, -1, gid)
    p = write_atomic(str(d / "t.json"), "[]", mode=0o640, group_of_dir=True)
    st = os.stat(p)
    assert st.st_gid == gid and stat.S_IMODE(st.st_mode) == 0o640
