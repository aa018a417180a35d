"""``lightning-dims demo [--out DIR]``: the paper's claims put to a test on embedded data, on a CPU, in minutes.

1. measures K_F and d_data of every task of the demo's grid (``sweeps/demo.yaml``: ``synthetic``
   at d = 2, 3, 4, 5, 6, 7 and, on one pool of d = 2 images, label margins of 6 to 36 degrees, and
   the medical ``brain-tissue``; ``sweeps/demo-digits.yaml``: natural ``digits`` 3 vs 8) at the
   largest training size they all have, under the demo's spec (16 px, 1 channel, per-image max
   255), for each seed, and prints the mean over the seeds: the values the findings use;
2. trains a small ResNet on each task at three training sizes and two seeds through
   ``lightning-dims sweep`` (runs forked from warm workers; W&B offline unless configured), with
   K_F/d_data, d_repr and FGSM measured by callbacks;
3. writes the report (``report.md``, figures, ``fits.json``) and prints its findings in plain
   words, each with its numbers and whether it holds at this scale.

A run has learned when its final test accuracy is at least chance + 0.15 (0.65 for these binary
tasks with class-balanced test sets); the demo says which runs did not. Re-running continues
where it stopped: finished runs are kept, interrupted ones resume.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from lightning_dims.cli import user_errors
from lightning_dims.errors import UsageError
from lightning_dims.sweep.grid import SweepRun, expand_grid, load_sweep
from lightning_dims.utils import canonical_json

__all__ = [
    "DEMO_SWEEPS",
    "PROG",
    "build_parser",
    "common_reference_size",
    "demo",
    "load_average",
    "main",
    "measure_tasks",
    "print_health",
    "print_properties",
    "varied_settings",
]

PROG = "lightning-dims demo"
DEMO_SWEEPS = ("sweeps/demo", "sweeps/demo-digits")
"""The demo's grid: shipped sweep files (``lightning_dims/configs/sweeps/``), usable from any folder."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightning-dims demo", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("--out", default="demo-out", help="folder for results, run folders and the report")
    parser.add_argument(
        "--sweep", action="append", default=None,
        help="grid sweep to run, a file or a shipped sweep, repeatable (default: sweeps/demo and sweeps/demo-digits, "
             "shipped with the package)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=min(2, os.cpu_count() or 1),
        help="training runs at once, the cores split among them (default: 2, or 1 on a one-core machine)",
    )  # fmt: skip
    return parser


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def common_reference_size(runs: list[SweepRun]) -> int | None:
    """The largest training size that every task of the grid is trained at (the report's reference N)."""
    sizes: dict[str, set[int]] = {}
    for run in runs:
        key = canonical_json(run.parameters.get("data", {}))
        sizes.setdefault(key, set()).add(run.parameters.get("data.train_size"))
    common = set.intersection(*sizes.values()) - {None} if sizes else set()
    return max(common) if common else None


def varied_settings(runs: list[SweepRun]) -> list[str]:
    """Dotted settings that are not the same in every grid point (``data.val_size`` when one task
    has a smaller pool), so the report pools the demo's sweeps as one experiment."""
    values: dict[str, list[str]] = {}
    for run in runs:
        for name, value in run.parameters.items():
            flat = {f"{name}.{key}": item for key, item in value.items()} if isinstance(value, dict) else {name: value}
            for key, item in flat.items():
                values.setdefault(key, []).append(canonical_json(item))
    return sorted(key for key, seen in values.items() if len(set(seen)) > 1 or len(seen) < len(runs))


def measure_tasks(runs: list[SweepRun], ref_n: int) -> list[dict]:
    """K_F and d_data of each distinct task of the grid, one value each, as the findings use them.

    Every task is measured at training size ``ref_n`` once per seed the grid trains it with: the
    same training sets as its runs at ``ref_n`` (the measurements are cached and those runs read them
    back), reduced to one value per task by the analysis's own rule
    (:func:`lightning_dims.analysis.tasks.reference_properties`: the mean over the seeds). Each dict
    holds the task's name, domain, ``label_sharpness`` and ``d_data`` (those means) and
    ``per_seed``: ``(seed, K_F, d_data)`` of each training set.
    """
    from lightning_dims.analysis.rows import RunRow, task_display_names, task_key
    from lightning_dims.analysis.tasks import reference_properties
    from lightning_dims.data import DatasetTask

    points = {}
    for run in runs:
        data = dict(run.parameters.get("data", {}))
        seed = int(run.parameters.get("data.seed", 0))
        points.setdefault((canonical_json(data), seed), (data, seed, str(run.parameters.get("model.arch"))))
    measured = []
    for data, seed, arch in points.values():
        options = data.pop("dataset_options", None)
        task = DatasetTask(**data | {"train_size": ref_n, "seed": seed}, options=options)
        measured.append((task, arch, task.properties(m=1000, k=20, estimator="mle", kf_mode="exhaustive")))
    names = task_display_names((t.name, tuple(t.classes), dict(t.options)) for t, _, _ in measured)
    rows = [
        RunRow(run_id=f"step 1: {p.task} seed {p.seed}", arch=arch, dataset=t.name, domain=t.domain,
               task=names[task_key(t.name, t.classes, t.options)], n_train=ref_n, seed=p.seed, options=dict(t.options),
               spec=p.preprocessing["key"], label_sharpness=p.label_sharpness, d_data=p.d_data, kf_m=p.m)
        for t, arch, p in measured
    ]
    properties, _ = reference_properties(rows, ref_n)
    return [
        {"task": prop.task, "domain": prop.domain, "label_sharpness": prop.label_sharpness, "d_data": prop.d_data,
         "spec": rows[0].spec, "per_seed": sorted((r.seed, r.label_sharpness, r.d_data) for r in rows if r.task == prop.task)}
        for prop in properties.values()
    ]


def print_properties(rows: list[dict], ref_n: int) -> None:
    spec = rows[0]["spec"] if rows else "?"
    seeds = sorted({seed for row in rows for seed, _, _ in row["per_seed"]})
    print(f"1/3 K_F and d_data of each task at N = {ref_n}, the mean over seeds {', '.join(map(str, seeds))} (the values "
          f"the findings use; spec {spec}; K_F in 1/intensity, max over all differently labelled pairs; d_data: MLE, k = 20)")
    width = max((len(row["task"]) for row in rows), default=0)
    for row in sorted(rows, key=lambda r: r["domain"]):  # stable: within a domain, the grid's order
        each = " ".join(f"{k_f:.2e}" for _, k_f, _ in row["per_seed"])
        print(f"    {row['task']:<{width}}  {row['domain']:<9}  K_F = {row['label_sharpness']:.3e} (per seed {each})   "
              f"d_data = {row['d_data']:5.2f}")
    by_domain: dict[str, list[dict]] = {}
    for row in rows:
        by_domain.setdefault(row["domain"], []).append(row)
    if len(by_domain.get("medical", [])) == 1 and len(by_domain.get("natural", [])) == 1:
        medical, natural = by_domain["medical"][0], by_domain["natural"][0]
        ratio = medical["label_sharpness"] / natural["label_sharpness"]
        print(f"    medical K_F / natural K_F = {ratio:.2f} ({medical['task']} over {natural['task']}: one dataset "
              "per domain, so no interval; the paper: about 2.5 at 224 px over 11 datasets)")


def print_health(records) -> None:
    """One line on how many of ``records`` learned, and a line for each that did not."""
    from lightning_dims.analysis.health import LEARNED_MARGIN, learned
    from lightning_dims.analysis.rows import rows_from_records

    rows, _ = rows_from_records(records)
    failed = [r for r in rows if not learned(r)]
    print(f"    {len(rows) - len(failed)} of {len(rows)} runs learned (final test accuracy >= chance + {LEARNED_MARGIN}, "
          f"i.e. >= {0.5 + LEARNED_MARGIN:.2f} on these binary tasks)")
    for r in failed:
        print(f"    did not learn: {r.task} N = {r.n_train}: test accuracy {r.test_acc}, AUROC {r.test_auroc}")


@user_errors(PROG)
def main(argv: list[str] | None = None) -> int:
    """The demo (module docstring); Ctrl-C or SIGTERM stops it with one line and the command that continues (130/143)."""
    from lightning_dims.sweep.interrupt import SignalStop, Stopped, stopped_line

    argv = sys.argv[2:] if argv is None else list(argv)
    progress = {"done": "nothing trained yet"}
    try:
        with SignalStop() as stop:
            code = demo(build_parser().parse_args(argv), stop, progress)
    except Stopped as stopped:
        print(stopped_line(PROG, stopped.signum, progress["done"], argv), file=sys.stderr)
        return 128 + stopped.signum
    if stop.signum is not None:
        print(stopped_line(PROG, stop.signum, progress["done"], argv), file=sys.stderr)
        return stop.exit_status
    return code


def demo(args: argparse.Namespace, stop, progress: dict[str, str]) -> int:
    """Measure, train, report (module docstring); ``progress["done"]`` says what a stop would leave."""
    out = Path(args.out)
    started, load_before = time.perf_counter(), load_average()
    runs = [run for name in (args.sweep or DEMO_SWEEPS) for run in expand_grid(load_sweep(name), cwd=Path.cwd())]
    ref_n = common_reference_size(runs)
    if ref_n is None:
        raise UsageError("the sweeps share no training size to measure every task at; give every task one common data.train_size")

    print_properties(measure_tasks(runs, ref_n), ref_n)

    from lightning_dims.analysis.report import write_report
    from lightning_dims.records.selection import select_records
    from lightning_dims.runs.folder import SweepLayout
    from lightning_dims.sweep.runner import PointStatus, RunnerControl, run_sweep, stopped_points
    from lightning_dims.sweep.slots import machine_slots

    results = out / "results"
    slots = machine_slots(workers=args.workers)
    print(f"2/3 training {len(runs)} runs, {len(slots)} at a time (records in {results}, logs in {SweepLayout(results).log_dir})")
    stop.control = RunnerControl()
    outcomes = run_sweep(runs, results, slots=slots, control=stop.control)
    stop.control = None
    progress["done"] = f"training: {stopped_points(outcomes)}"
    if stop.signum is not None:
        return stop.exit_status
    failed = [o for o in outcomes if o.status is PointStatus.FAILED]
    selection = select_records(results, vary=varied_settings(runs))  # read once: the health line and the report
    print_health(selection.used)

    print(f"3/3 report -> {out / 'report' / 'report.md'}")
    if selection.skipped:
        print(f"    {selection.summary()}")
    fits = write_report(selection.used, out / "report")
    print("Findings:")
    for number, finding in enumerate(fits["findings"], start=1):
        print(f"  {number}. {finding['text']}")
    from lightning_dims.commands.plan import demo_plan

    demo_plan(selection.used)
    seconds = time.perf_counter() - started
    print(f"done in {seconds:.0f} s ({seconds / 60:.1f} min); load average (1, 5, 15 min) at start {load_before}, "
          f"at end {load_average()}")
    if failed:
        print(f"{len(failed)} runs failed (logs: {', '.join(str(o.log) for o in failed)}); re-run to retry", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
