"""Atomic file writes: a reader sees the old file or the complete new one, never half of one."""

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_text"]


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Calls ``write(tmp)`` on a temporary file beside ``path``, then renames it to ``path``.

    Examples:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> atomic_write(d / "a.txt", lambda tmp: tmp.write_text("hi")).read_text()
        'hi'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Writes ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))
