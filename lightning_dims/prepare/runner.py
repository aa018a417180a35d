"""The shared prepare runner: plan, run tasks in parallel with a journal, then write the dataset.

Output folder (``--out``)::

    manifest.csv          path (relative), label (0/1), patient_id, source identifiers
    prepare.json          the preparation spec: dataset, options, library versions, counts
    prepare_report.csv    every file or row not used as-is: kind, reason, source, detail
    images/...            the written images
    .prepare/spec.json    what this folder is being prepared with (a resume must match it)
    .prepare/journal.jsonl  one line per finished task (see :mod:`lightning_dims.prepare.journal`)

Resumable: a killed prepare, run again with the same arguments, skips journalled tasks. Finished
results are never overwritten: every file is written to a temporary name and renamed, the manifest
last, and a folder holding another dataset or other options is refused. Parallel: tasks run in a
process pool (``workers``), results are journalled by the main process as they arrive.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from lightning_dims.data.manifest import MANIFEST_NAME, PREPARE_SPEC_NAME
from lightning_dims.prepare.imaging import remove_partials
from lightning_dims.prepare.journal import Journal
from lightning_dims.prepare.registry import (
    PREPARERS,
    Context,
    PrepareError,
    Preparer,
    get_preparer,
)
from lightning_dims.prepare.sampling import class_orders, draw
from lightning_dims.prepare.sources import source_folder
from lightning_dims.prepare.tasks import ISSUE_KINDS, BadFile, Issue, Task, TaskResult
from lightning_dims.utils import atomic_write

__all__ = [
    "BASE_COLUMNS",
    "FORMAT",
    "LIBRARIES",
    "PROGRAMMING_ERRORS",
    "REPORT_NAME",
    "STATE_DIR",
    "Summary",
    "collect",
    "finished_summary",
    "library_versions",
    "manifest_csv",
    "output_state",
    "preparation_spec",
    "prepare",
    "procedural",
    "report_csv",
    "run_plan",
    "run_task",
    "run_tasks",
    "unique_tasks",
]

STATE_DIR = ".prepare"
REPORT_NAME = "prepare_report.csv"
FORMAT = 1
"""Version of the output layout; a folder prepared under another version is not resumed."""
BASE_COLUMNS = ("path", "label", "patient_id")
LIBRARIES = ("numpy", "scipy", "pandas", "pillow", "pydicom", "nibabel")
PROGRAMMING_ERRORS = (NameError, ImportError, AssertionError, NotImplementedError, SyntaxError)
"""Raised inside a task these are bugs, not bad files: they stop the prepare instead of being reported."""


@dataclass
class Summary:
    """The outcome of one ``prepare`` call (also printed by the command)."""

    out: Path
    dataset: str
    images: int
    classes: dict[str, int]
    patients: int
    issues: list[Issue] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    resumed: int = 0
    already_done: bool = False

    @property
    def manifest(self) -> Path:
        return self.out / MANIFEST_NAME

    @property
    def report(self) -> Path:
        return self.out / REPORT_NAME


def prepare(
    name: str,
    source: str | Path,
    out: str | Path,
    options: dict | None = None,
    *,
    paper: bool = False,
    workers: int = 1,
    progress: bool = False,
) -> Summary:
    """Prepare dataset ``name`` from its download in ``source`` into ``out`` (see the module docstring).

    ``options`` are typed values (the command parses the strings); missing ones take the authors' defaults.
    """
    preparer = get_preparer(name)
    resolved = preparer.resolve_options(dict(options or {}), paper=paper)
    source = source_folder(source)
    out = Path(out).expanduser()
    if out.resolve().is_relative_to(source.resolve()):
        raise PrepareError(f"--out {out} lies inside --source {source}; write the prepared dataset elsewhere")
    identity = {"format": FORMAT, "dataset": name, "options": procedural(preparer, resolved)}
    if output_state(out, identity) == "done":
        return finished_summary(out, name)
    plan = unique_tasks(preparer.plan(source, resolved))  # before claiming the folder: a table error leaves nothing behind
    atomic_write(out / STATE_DIR / "spec.json", json.dumps(identity, indent=2, sort_keys=True) + "\n")
    remove_partials(out)
    journal = Journal(out / STATE_DIR / "journal.jsonl")
    resumed = sum(1 for task in plan.tasks if task.key in journal)
    context = Context(source=source.resolve(), out=out.resolve(), options=resolved)
    try:
        chosen = run_plan(preparer, plan, journal, context, workers, progress)
    finally:
        journal.close()
    rows, issues, counts = collect(plan, chosen, journal)
    atomic_write(out / REPORT_NAME, report_csv(issues))
    if not rows:
        raise PrepareError(f"{name}: no images were prepared from {source}; see {out / REPORT_NAME} for why")
    spec = preparation_spec(preparer, resolved, source, rows, issues, counts)
    atomic_write(out / PREPARE_SPEC_NAME, json.dumps(spec, indent=2, sort_keys=True, default=str) + "\n")
    atomic_write(out / MANIFEST_NAME, manifest_csv(rows, BASE_COLUMNS + preparer.columns))  # last: its presence means done
    return Summary(out, name, len(rows), spec["classes"], spec["patients"], issues, spec["counts"], resumed)


def collect(plan, chosen: list[Task], journal: Journal) -> tuple[list[dict], list[Issue], Counter]:
    """Manifest rows of the chosen tasks (plan order); issues and tallies of planning and of every task run."""
    issues, counts, rows = list(plan.issues), Counter(plan.counts), []
    for task in plan.tasks:
        if task.key in journal:
            result = journal.result(task.key)
            issues.extend(result.issues)
            counts.update(result.counts)
    for task in chosen:
        rows.extend(journal.result(task.key).rows)
    return rows, issues, counts


def preparation_spec(preparer: Preparer, options: dict, source: Path, rows: list[dict], issues: list[Issue], counts: Counter) -> dict:
    """The content of ``prepare.json``: how the images were made, and what came out."""
    return {
        "dataset": preparer.name,
        "title": preparer.title,
        "format": FORMAT,
        "options": options,
        "paper": preparer.is_paper(options),
        "procedure": preparer.doc,
        "source": str(source.resolve()),
        "libraries": library_versions(),
        "images": len(rows),
        "classes": dict(sorted(Counter(str(row["label"]) for row in rows).items())),
        "patients": len({row["patient_id"] for row in rows}),
        "issues": {kind: sum(1 for issue in issues if issue.kind == kind) for kind in ISSUE_KINDS},
        "counts": dict(sorted(counts.items())),
    }


def unique_tasks(plan):
    """The plan with each task key once (the first); repeats become ``unexpected`` issues."""
    seen, tasks = set(), []
    for task in plan.tasks:
        if task.key in seen:
            plan.issues.append(Issue("unexpected", "listed twice", task.source or task.key))
        else:
            seen.add(task.key)
            tasks.append(task)
    plan.tasks = tasks
    return plan


def procedural(preparer: Preparer, options: dict) -> dict:
    """The options that change the result (not file locations)."""
    return {o.name: options[o.name] for o in preparer.options if not o.location}


def output_state(out: Path, identity: dict) -> str:
    """``new``, ``resume`` (same dataset and options, unfinished) or ``done``; reads only.

    Refuses a folder that holds anything else: another dataset, other options, or unrelated files.
    """
    state = out / STATE_DIR / "spec.json"
    if out.exists() and not out.is_dir():
        raise PrepareError(f"--out {out} is a file; give a folder")
    if state.is_file():
        saved = json.loads(state.read_text())
        if saved != identity:
            differing = sorted(key for key in set(saved.get("options", {})) | set(identity["options"]) if saved.get("options", {}).get(key) != identity["options"].get(key))
            what = f"dataset {saved.get('dataset')!r}" if saved.get("dataset") != identity["dataset"] else f"other options ({', '.join(differing) or 'format'})"
            raise PrepareError(f"--out {out} holds a prepare with {what}; use another --out, or delete {out} to start over")
        return "done" if (out / MANIFEST_NAME).is_file() and (out / PREPARE_SPEC_NAME).is_file() else "resume"
    if out.is_dir() and any(out.iterdir()):
        raise PrepareError(f"--out {out} is not empty and holds no unfinished prepare; choose a new or empty folder")
    return "new"


def finished_summary(out: Path, name: str) -> Summary:
    spec = json.loads((out / PREPARE_SPEC_NAME).read_text())
    issues = []
    if (out / REPORT_NAME).is_file():
        with open(out / REPORT_NAME, newline="", encoding="utf-8") as stream:
            issues = [Issue(**row) for row in csv.DictReader(stream)]
    return Summary(out, name, spec["images"], spec["classes"], spec["patients"], issues, spec.get("counts", {}), already_done=True)


def run_plan(preparer: Preparer, plan, journal: Journal, context: Context, workers: int, progress: bool) -> list[Task]:
    """Run the plan's pending tasks (drawing per class when the plan asks); returns the usable chosen tasks."""
    from tqdm import tqdm

    with tqdm(total=0, desc=f"prepare {preparer.name}", unit="file", disable=not progress, dynamic_ncols=True) as bar:
        if not plan.per_class:
            pending = [task for task in plan.tasks if task.key not in journal]
            bar.total = len(pending)
            run_tasks(preparer.name, pending, journal, context, workers, bar)
            return [task for task in plan.tasks if journal.ok(task.key)]
        orders = class_orders(plan.tasks, plan.seed)
        while True:
            chosen = draw(orders, plan.per_class, journal.ok)
            pending = [task for task in chosen if task.key not in journal]
            if not pending:
                keys = {task.key for task in chosen}
                return [task for task in plan.tasks if task.key in keys]
            bar.total += len(pending)
            bar.refresh()
            run_tasks(preparer.name, pending, journal, context, workers, bar)


def run_tasks(name: str, tasks: list[Task], journal: Journal, context: Context, workers: int, bar) -> None:
    """Run ``tasks`` (in a process pool when ``workers`` > 1), journalling each result as it arrives."""
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            journal.append(task.key, *run_task(name, task, context))
            bar.update()
        return
    queue = iter(tasks)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        running = {}
        try:
            while True:
                while len(running) < 4 * workers and (task := next(queue, None)) is not None:
                    running[pool.submit(run_task, name, task, context)] = task
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    task = running.pop(future)
                    journal.append(task.key, *future.result())
                    bar.update()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def run_task(name: str, task: Task, context: Context) -> tuple[bool, TaskResult]:
    """One task in a worker: (True, result), or (False, the refusal as a ``bad`` issue)."""
    import lightning_dims.prepare  # noqa: F401  (a spawned worker registers the preparers)

    try:
        return True, PREPARERS[name].convert(task.payload, context)
    except BadFile as error:
        return False, TaskResult(issues=[Issue("bad", error.reason, error.source or task.source, error.detail)])
    except PROGRAMMING_ERRORS:
        raise
    except Exception as error:  # decoders raise anything (OSError, ValueError, zlib.error, struct.error, ...)
        return False, TaskResult(issues=[Issue("bad", f"unreadable ({type(error).__name__})", task.source, str(error))])


def report_csv(issues: list[Issue]) -> str:
    order = {kind: index for index, kind in enumerate(ISSUE_KINDS)}
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["kind", "reason", "source", "detail"], lineterminator="\n")
    writer.writeheader()
    for issue in sorted(issues, key=lambda i: (order[i.kind], i.reason, i.source, i.detail)):
        writer.writerow(asdict(issue))
    return buffer.getvalue()


def manifest_csv(rows: list[dict], columns: tuple[str, ...]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n", extrasaction="raise")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def library_versions() -> dict[str, str]:
    versions = {}
    for library in LIBRARIES:
        try:
            versions[library] = metadata.version(library)
        except metadata.PackageNotFoundError:
            versions[library] = "absent"
    return versions
