"""What a preparer plans and what each task returns: tasks, results, and reported issues.

Nothing is skipped silently: every file or table row that is not turned into an image is an
:class:`Issue` that ends up in ``prepare_report.csv`` and in the summary on stderr.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ISSUE_KINDS", "BadFile", "Issue", "Plan", "Task", "TaskResult"]

ISSUE_KINDS = ("bad", "unexpected", "fixed", "note")
"""``bad``: a file that could not be used (unreadable, refused); ``unexpected``: a file or table row
outside the documented layout (no label, unknown patient); ``fixed``: a known path typo worked
around (a warning); ``note``: a deviation applied to a usable file (e.g. clipped values)."""


@dataclass(frozen=True)
class Issue:
    """One reported file or row.

    Attributes:
        kind: one of :data:`ISSUE_KINDS`.
        reason: short and shared by all issues of one cause (the summary groups by it).
        source: the file or row concerned (relative to ``--source`` where possible).
        detail: specifics for this one.
    """

    kind: str
    reason: str
    source: str
    detail: str = ""

    def __post_init__(self):
        if self.kind not in ISSUE_KINDS:
            raise ValueError(f"issue kind must be one of {ISSUE_KINDS}, got {self.kind!r}")


class BadFile(Exception):
    """Raised by a task's ``convert`` for a file it refuses; becomes a ``bad`` :class:`Issue`."""

    def __init__(self, reason: str, detail: str = "", source: str | None = None):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.source = source


@dataclass(frozen=True)
class Task:
    """One unit of work (a file, a volume, a series).

    Attributes:
        key: unique and stable across runs (the journal's key; a resumed prepare skips done keys).
        payload: plain, picklable data ``convert`` needs (paths relative to ``--source``).
        label: the class, when known before reading pixels (lets the runner draw per class).
        source: the file it reads, for reports.
    """

    key: str
    payload: dict
    label: int | None = None
    source: str = ""


@dataclass
class TaskResult:
    """What one task produced.

    Attributes:
        rows: manifest lines (``path`` relative to the output folder, ``label``, ``patient_id``, ...).
        issues: reported files or rows.
        counts: named tallies summed over tasks into ``prepare.json`` (e.g. slices dropped as ambiguous).
    """

    rows: list[dict] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class Plan:
    """A preparer's plan: the tasks, what planning already found, and the per-class draw.

    Attributes:
        tasks: every candidate task, in a deterministic order.
        issues: files or rows reported while planning.
        counts: planning tallies (e.g. slices outside the label rule's margins).
        per_class: draw this many tasks per label at random (0: run every task).
        seed: seed of that draw.
    """

    tasks: list[Task]
    issues: list[Issue] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    per_class: int = 0
    seed: int = 0
