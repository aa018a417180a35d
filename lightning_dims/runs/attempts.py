"""The attempt journal: every process that worked on a run, in its folder's ``attempts.jsonl``.

One JSON line when an attempt starts (``{"event": "start", "attempt", "started_at", "host", "pid",
"resumed_from"}``) and one when it ends (``{"event": "end", "attempt", "status", "ended_at",
"wall_time_s"}``). An attempt that never wrote its end was killed (SIGKILL, a lost node): the next
attempt writes its end with status ``killed``, its end time the last sign of life in the run
folder, taken before the new attempt writes anything (:meth:`RunFolder.last_sign_of_life
<lightning_dims.runs.folder.RunFolder.last_sign_of_life>`:
the newest modification time of its checkpoints, W&B files, ...). Only global rank 0 writes. Appends of one short line are atomic on POSIX
filesystems, and the run's claim makes the writer unique.
"""

from __future__ import annotations

import calendar
import json
import os
import socket
import time
from pathlib import Path

from lightning_dims.records.schema import RunStatus

__all__ = ["AttemptJournal", "parse_stamp", "utc_stamp"]


def utc_stamp(seconds: float | None = None) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` of ``seconds`` since the epoch (default: now)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if seconds is None else seconds))


def parse_stamp(stamp: str) -> float:
    return float(calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")))


class AttemptJournal:
    """Reads and appends one run's journal, the file :attr:`RunFolder.journal_file <lightning_dims.runs.folder.RunFolder.journal_file>`."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def events(self) -> list[dict]:
        """Every readable line, in order (a torn last line from a crash is skipped)."""
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return []
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events

    def _append(self, event: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as handle:
            handle.write(json.dumps(event) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def attempts(self) -> list[dict]:
        """One dict per attempt (``Attempt`` fields), an unended one with status ``running``."""
        by_number: dict[int, dict] = {}
        for event in self.events():
            number = int(event.get("attempt", 0))
            entry = by_number.setdefault(number, {"attempt": number, "status": RunStatus.RUNNING})
            if event.get("event") == "start":
                entry.update({key: event.get(key) for key in ("started_at", "host", "pid", "resumed_from")})
            elif event.get("event") == "end":
                entry.update({key: event.get(key) for key in ("status", "ended_at", "wall_time_s")})
        return [by_number[number] for number in sorted(by_number) if "started_at" in by_number[number]]

    def start(self, resumed_from: str | None, last_seen: float | None = None) -> int:
        """Close earlier unended attempts as ``killed`` (the last one ending at ``last_seen``), log this one's start.

        Returns this attempt's number.
        """
        attempts = self.attempts()
        for attempt in attempts:
            if attempt["status"] == RunStatus.RUNNING:
                ended = last_seen if attempt is attempts[-1] else None
                wall = None if ended is None else max(0.0, ended - parse_stamp(attempt["started_at"]))
                self._append(
                    {
                        "event": "end",
                        "attempt": attempt["attempt"],
                        "status": RunStatus.KILLED,
                        "ended_at": None if ended is None else utc_stamp(ended),
                        "wall_time_s": wall,
                    }
                )
        number = 1 + max((attempt["attempt"] for attempt in attempts), default=0)
        self._append(
            {
                "event": "start",
                "attempt": number,
                "started_at": utc_stamp(),
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "resumed_from": resumed_from,
            }
        )
        return number

    def end(self, number: int, status: RunStatus, wall_time_s: float) -> None:
        self._append(
            {"event": "end", "attempt": number, "status": status, "ended_at": utc_stamp(), "wall_time_s": wall_time_s}
        )
