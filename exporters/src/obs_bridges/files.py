"""Files that another process reads while we write them (Prometheus password_file, file_sd targets,
generated scrape configs): written whole or not at all, never readable by more than `mode` allows."""
from __future__ import annotations

import os


def write_atomic(path: str, text: str, mode: int = 0o600, group_of_dir: bool = False) -> str:
    """Write `text` to `path` by temporary file + rename in the same directory, so a reader sees the old
    file or the new one, never a truncated one. The temporary file is created 0600 and only then given
    `mode`, so no moment exists where a secret is readable by more. With `group_of_dir`, the file takes its
    directory's group (under a setgid directory it inherits it; otherwise it is set where allowed)."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        if group_of_dir:
            gid = os.stat(directory).st_gid
            if os.fstat(fd).st_gid != gid:
                try:
                    os.fchown(fd, -1, gid)
                except PermissionError:
                    pass
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fd = -1
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
