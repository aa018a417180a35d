"""Results records and property-cache entries are replaced atomically (temp file + rename), never in place.

Three checks that an in-place write (``open(target, "w")`` then write) fails and an atomic one passes:

* a handle opened on the old file still reads the old, complete content after the replacement
  (a rename swaps in a new file; an in-place write truncates and rewrites the same file);
* a write that dies half-way leaves the old file intact (cache entries are streamed as JSON);
* a separate reader process polling the file while it is rewritten many times never sees it
  missing, empty or truncated.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from lightning_dims.data.property_cache import load_entry, store_entry
from lightning_dims.records import ResultsRecord, read_record, record_path, write_record

BLOB = 2_000_000
"""Characters of padding per written file: big enough that a write takes a measurable time."""

READER = r"""
import json, sys, time
from pathlib import Path

target, stop, progress = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
reads = partial = missing = 0
progress.write_text("0")
while not stop.exists():
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        missing += 1
        continue
    reads += 1
    try:
        json.loads(data)
    except ValueError:
        partial += 1
    progress.write_text(str(reads))
print(json.dumps({"reads": reads, "partial": partial, "missing": missing}))
"""


def failed_record(attempt: int, padding: int = 0) -> ResultsRecord:
    """A failed run's record (a later attempt may replace it), optionally padded to a large file."""
    return ResultsRecord(
        run_id="r1", status="failed", dataset="digits", arch="resnet18", n_train=100, seed=0,
        error=f"attempt {attempt}", extra={"attempt": attempt, "padding": "x" * padding},
    )  # fmt: skip


def watch_while(path, rewrite, tmp_path, min_reads: int = 30, max_seconds: float = 120.0) -> dict:
    """Run ``rewrite(i)`` for i = 0, 1, ... while a reader process polls ``path``; the reader's counts.

    Rewrites go on for at least 40 rewrites and 2 s, and until the reader has read the file
    ``min_reads`` times, so the check cannot pass without the reader having looked.
    """
    stop, progress = tmp_path / "stop", tmp_path / "progress"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(path), str(stop), str(progress)], stdout=subprocess.PIPE, text=True
    )

    def reads_so_far() -> int:
        try:
            return int(progress.read_text() or 0)
        except (OSError, ValueError):
            return 0

    try:
        deadline = time.monotonic() + 60
        while not progress.exists():
            assert time.monotonic() < deadline and reader.poll() is None, "the reader process did not start"
            time.sleep(0.01)
        started, attempt = time.monotonic(), 0
        while attempt < 40 or time.monotonic() - started < 2.0 or reads_so_far() < min_reads:
            rewrite(attempt)
            attempt += 1
            if time.monotonic() - started > max_seconds:
                break
        stop.write_text("stop")
        out, _ = reader.communicate(timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
    counts = json.loads(out)
    assert counts["reads"] >= min_reads, f"the reader only read the file {counts['reads']} times: {counts}"
    return counts | {"writes": attempt}


# ---- results records -------------------------------------------------------------------------


def test_replacing_a_failed_record_swaps_in_a_new_file(tmp_path):
    path = record_path(tmp_path, "r1")
    write_record(path, failed_record(1, padding=1000))
    old_text = path.read_text()
    with open(path) as old:  # a reader that opened the old record before it was replaced
        written = write_record(path, failed_record(2, padding=10))
        assert written == path
        assert old.read() == old_text  # an in-place write would have truncated and rewritten this file
    assert read_record(path).error == "attempt 2"


def test_concurrent_reader_never_sees_a_partial_record(tmp_path):
    path = record_path(tmp_path, "r1")
    write_record(path, failed_record(-1, padding=BLOB))
    counts = watch_while(path, lambda i: write_record(path, failed_record(i, padding=BLOB)), tmp_path)
    assert counts["partial"] == 0 and counts["missing"] == 0, counts
    assert read_record(path).extra["attempt"] == counts["writes"] - 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["progress", "r1.record.json", "stop"]  # no temp files left


def test_a_new_record_appears_complete_or_not_at_all(tmp_path):
    """The first record of a run (no file there yet) is linked into place whole, never written in place."""
    path = record_path(tmp_path, "r1")

    def write_new(attempt: int) -> None:
        path.unlink(missing_ok=True)  # each write finds no record: the branch that creates one
        write_record(path, failed_record(attempt, padding=BLOB))

    counts = watch_while(path, write_new, tmp_path)
    assert counts["partial"] == 0, counts
    assert read_record(path).extra["attempt"] == counts["writes"] - 1


# ---- property cache ----------------------------------------------------------------------------

KEY = "f" * 64


def test_replacing_a_cache_entry_swaps_in_a_new_file():
    first = {"label_sharpness": 1.5e-4, "d_data": 9.25, "padding": "x" * 1000}
    path = store_entry(KEY, first)
    with open(path) as old:
        assert store_entry(KEY, {"label_sharpness": 2.0e-4, "d_data": 7.0}) == path
        assert json.loads(old.read()) == first  # still the old file's complete content
    assert load_entry(KEY) == {"label_sharpness": 2.0e-4, "d_data": 7.0}


def test_a_cache_write_that_dies_half_way_keeps_the_old_entry():
    first = {"label_sharpness": 1.5e-4, "d_data": 9.25}
    path = store_entry(KEY, first)
    broken = {"a_first": "x" * 100_000, "z_last": object()}  # JSON streams "a_first", then fails
    with pytest.raises(TypeError):
        store_entry(KEY, broken)
    assert load_entry(KEY) == first
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # the half-written temp file is gone


def test_concurrent_reader_never_sees_a_partial_cache_entry(tmp_path):
    path = store_entry(KEY, {"attempt": -1, "padding": "x" * BLOB})
    counts = watch_while(path, lambda i: store_entry(KEY, {"attempt": i, "padding": "x" * BLOB}), tmp_path)
    assert counts["partial"] == 0 and counts["missing"] == 0, counts
    assert load_entry(KEY)["attempt"] == counts["writes"] - 1
