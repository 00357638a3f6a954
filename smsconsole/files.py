"""Files and folders smsconsole keeps private to the user: the key, the database and its WAL, the
log, and the config and data folders (files 0600, folders 0700)."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700

log = logging.getLogger(__name__)


def private_dir(path: Path) -> None:
    """Create `path` (and missing parents) readable by this user only."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)


def private_file(path: Path) -> None:
    """Create `path` empty, readable by this user only, unless it exists."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        pass


def tighten(paths: Iterable[Path]) -> list[str]:
    """Remove group and other access from these files and folders where they have it, and log
    each change. Only this user's own regular files and folders are touched (never a device such
    as /dev/full, a shared folder with the sticky bit such as /tmp, or another user's file).
    Returns what was changed."""
    changed = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            continue
        if info.st_uid != os.geteuid() or info.st_mode & stat.S_ISVTX:
            continue
        if stat.S_ISDIR(info.st_mode):
            wanted = PRIVATE_DIR
        elif stat.S_ISREG(info.st_mode):
            wanted = PRIVATE_FILE
        else:
            continue
        current = stat.S_IMODE(info.st_mode)
        if not current & 0o077:
            continue
        try:
            os.chmod(path, current & wanted)
        except OSError:  # a read-only file system: nothing to do about it here
            continue
        log.info("tightened the permissions of %s from %04o to %04o (readable by this user only)",
                 path, current, current & wanted)
        changed.append(str(path))
    return changed
