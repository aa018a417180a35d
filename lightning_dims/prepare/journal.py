"""The prepare journal: one JSON line per finished task, so a killed prepare continues where it stopped.

Lines are appended by the main process only, after the task's images were written (atomically),
so a line means "this task is complete". A line cut short by a kill is ignored on reading, and its
task simply runs again (its images are rewritten atomically, never half-written).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from lightning_dims.prepare.tasks import Issue, TaskResult

__all__ = ["Journal", "decode"]


class Journal:
    """Finished tasks of one output folder: key -> (ok, :class:`TaskResult`)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.entries: dict[str, tuple[bool, TaskResult]] = {}
        if self.path.is_file():
            with open(self.path, encoding="utf-8") as stream:
                for line in stream:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # the last line of a killed run
                    self.entries[record["key"]] = (record["ok"], decode(record))
        self._stream = None

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def ok(self, key: str) -> bool | None:
        """True (done), False (tried, refused) or None (not run yet)."""
        entry = self.entries.get(key)
        return None if entry is None else entry[0]

    def result(self, key: str) -> TaskResult:
        return self.entries[key][1]

    def append(self, key: str, ok: bool, result: TaskResult) -> None:
        if self._stream is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = open(self.path, "a", encoding="utf-8")
        record = {
            "key": key,
            "ok": ok,
            "rows": result.rows,
            "issues": [asdict(issue) for issue in result.issues],
            "counts": result.counts,
        }
        self._stream.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._stream.flush()  # a killed process loses at most the line being written
        self.entries[key] = (ok, result)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


def decode(record: dict) -> TaskResult:
    return TaskResult(
        rows=record.get("rows", []),
        issues=[Issue(**issue) for issue in record.get("issues", [])],
        counts=record.get("counts", {}),
    )
