"""Fingerprints of data files: the SHA-256 of their bytes, read again when size or time change."""

import hashlib
import os

from flowcf.fingerprint import Fingerprints


def test_a_digest_is_of_the_bytes_and_cached_by_size_and_modification_time(tmp_path):
    path, cache = tmp_path / "data.csv", tmp_path / "cache.json"
    path.write_bytes(b"a,b\n1,2\n")
    fingerprints = Fingerprints(cache)
    first = fingerprints.digest(path)
    assert first == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    fingerprints.save()  # for the next run
    stat = path.stat()
    path.write_bytes(b"a,b\n3,4\n")  # same size; the same time put back: the cached digest
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert Fingerprints(cache).digest(path) == first
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # a new time: read again
    assert Fingerprints(cache).digest(path) == hashlib.sha256(b"a,b\n3,4\n").hexdigest()


def test_the_fingerprint_of_files_is_of_their_contents_in_order_not_their_names(tmp_path):
    for name, text in [("a", "one"), ("b", "two"), ("copy_of_a", "one")]:
        (tmp_path / name).write_text(text)
    fingerprints = Fingerprints(tmp_path / "cache.json")
    a, b, copy = tmp_path / "a", tmp_path / "b", tmp_path / "copy_of_a"
    assert fingerprints.of([a, b]) == fingerprints.of([copy, b])
    assert fingerprints.of([a, b]) != fingerprints.of([b, a])
    assert fingerprints.of([a]) != fingerprints.of([b])
