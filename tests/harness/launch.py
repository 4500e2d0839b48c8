"""Start one service the way its container would see the world, then exec it.

Runs as root inside the service's network namespace (via `ip netns exec`, which also gives it a
private mount namespace). It builds a root for the service as an overlay of the host's / (so nothing it
creates touches the host), bind-mounts the very files docker-compose.yml mounts at the very same
container paths, writes the service's /etc/hosts (compose service names -> their addresses), then
chroots, drops to the compose `user:` and execs the binary with the compose `command:`.

Standard library only (and tests/support/pdeathsig.py, for the death signal); run from the repository
root as `python3 -m tests.harness.launch SPEC.json` (tests/harness/stack.py: LAUNCH_ARGV).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support import pdeathsig


def sh(*args: str) -> None:
    subprocess.run(args, check=True)


def main(spec_path: str) -> None:
    parent = os.getppid()  # the test process (`ip netns exec` and `unshare` exec, they do not fork)
    with open(spec_path) as f:
        spec = json.load(f)
    root, upper, work = spec["root"], spec["upper"], spec["work"]
    for d in (root, upper, work):
        os.makedirs(d, exist_ok=True)
    # Nothing mounted below may leak back into the host's mount table.
    sh("mount", "--make-rprivate", "/")
    sh("mount", "-t", "overlay", "overlay", "-o", f"lowerdir=/,upperdir={upper},workdir={work}", root)
    # The overlay shows the root filesystem only; kernel filesystems and separately mounted trees
    # (a tmpfs /tmp, say) must be carried over explicitly.
    for sub in ("/proc", "/sys", "/dev", "/tmp", "/run", "/root"):
        if os.path.ismount(sub):
            os.makedirs(root + sub, exist_ok=True)
            sh("mount", "--rbind", sub, root + sub)

    with open(root + "/etc/hosts", "w") as f:
        f.write(spec["hosts"])

    for m in spec["mounts"]:
        target = root + m["target"]
        if m["is_dir"]:
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if not os.path.exists(target):
                open(target, "a").close()
        sh("mount", "--bind", m["source"], target)
        if m["read_only"]:
            sh("mount", "-o", "remount,bind,ro", target)

    os.chroot(root)
    os.chdir(spec.get("cwd") or "/")
    uid, gid = spec.get("uid"), spec.get("gid")
    if gid is not None:
        os.setgroups([])
        os.setgid(gid)
    if uid is not None:
        os.setuid(uid)
    # Die with the test process, even a SIGKILLed one that runs no teardown: set after the uid change
    # (which clears it), kept across execve. Checked against a parent that died before it was set.
    pdeathsig.arm(parent)
    os.execve(spec["argv"][0], spec["argv"], spec["env"])


if __name__ == "__main__":
    main(sys.argv[1])
