"""An exclusive lock between processes that leaves no lock file behind.

``flock`` locks an open file, not its name: a holder that removes the file on release may leave
a waiter holding a lock on a file nobody else can see, while a newcomer creates and locks a new
one. So whoever acquires the lock checks that the name still points at the file it locked, and
tries again if not; the holder removes the file while it still holds the lock.
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["exclusive"]


def _holds(fd: int, path: Path) -> bool:
    """Whether ``path`` names the file open as ``fd``."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


@contextmanager
def exclusive(path: str | Path) -> Iterator[None]:
    """Holds an exclusive lock on ``path`` (created with its directory, and removed on release).

    Examples:
        >>> import tempfile, pathlib
        >>> lock = pathlib.Path(tempfile.mkdtemp()) / "a" / ".lock"
        >>> with exclusive(lock):
        ...     lock.exists()
        True
        >>> lock.exists()
        False
    """
    path = Path(path)
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # its directory was removed in between: start again
            continue
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _holds(fd, path):
            break
        os.close(fd)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)
