"""Content fingerprints of the files a data set reads: SHA-256 of their bytes.

Artifacts are keyed by what the data is, not where it lives: the same files under another
``data.root`` give the same key, a file changed in place a new one. Hashing a large file (MNIST's
IDX files, CelebA's JPEGs) on every run would cost more than the run, so each file's digest is
cached by its absolute path, size and modification time (``st_mtime_ns``) in a small JSON file;
a file whose size or time changed is hashed again.

Examples:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.csv").write_text("x,y\\n1,0\\n"), (d / "b.csv").write_text("x,y\\n1,0\\n")
    >>> fingerprints = Fingerprints(d / "cache.json")
    >>> fingerprints.of([d / "a.csv"]) == fingerprints.of([d / "b.csv"])
    True
    >>> sorted(p.name for p in d.iterdir())
    ['a.csv', 'b.csv', 'cache.json']
"""

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from flowcf.io import atomic_write_text

__all__ = ["Fingerprints", "file_digest"]

CHUNK = 1 << 20


def file_digest(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class Fingerprints:
    """File digests, cached in ``cache`` by absolute path, size and modification time.

    Arguments:
        cache: The JSON cache file (created on first use; a damaged one is started afresh).
    """

    def __init__(self, cache: str | Path):
        self.cache = Path(cache)
        self._entries = self._read()
        self._new: dict[str, list] = {}

    def _read(self) -> dict[str, list]:
        try:
            entries = json.loads(self.cache.read_text())
        except (OSError, ValueError):
            return {}
        return entries if isinstance(entries, dict) else {}

    def digest(self, path: str | Path) -> str:
        """The SHA-256 of the file at ``path``, from the cache while its size and time hold."""
        key = os.path.abspath(path)
        stat = os.stat(key)
        stamp = [stat.st_size, stat.st_mtime_ns]
        entry = self._entries.get(key)
        if entry is None or entry[:2] != stamp:
            entry = self._new[key] = self._entries[key] = [*stamp, file_digest(key)]
        return entry[2]

    def of(self, paths: Iterable[str | Path]) -> str:
        """One digest of the contents of ``paths`` in this order (their names do not count),
        then the cache saved if it learnt a file."""
        text = "\n".join(self.digest(path) for path in paths)
        self.save()
        return hashlib.sha256(text.encode()).hexdigest()

    def save(self) -> None:
        """Adds the digests computed since the last save to the cache file, keeping what other
        processes wrote meanwhile (written atomically; a lost race only costs a re-hash)."""
        if self._new:
            entries = {**self._read(), **self._new}
            atomic_write_text(self.cache, json.dumps(entries, sort_keys=True))
            self._entries.update(entries)
            self._new = {}
