"""``lightning-dims plan``: the training size a target loss needs, from a task's runs or from K_F and d_data alone.

* ``--task NAME --target-loss L`` (or ``--target-acc A``): the task's own learning curve.
* ``--dataset NAME [--classes a,b]``: a dataset without runs; its K_F and d_data are measured
  (``lightning-dims measure``'s path and cache, at the records' spec, reference N and M) and the
  across-task law fitted on the records predicts the size, with the FGSM penalty K_F predicts.
* ``--backtest``: how often the two routes' 95 % intervals covered a measured loss.

Records come from ``--results DIR`` or ``--from-wandb ENTITY/PROJECT[/SWEEP_ID]``, selected as
``report`` selects them. The math is :mod:`lightning_dims.analysis.plan` and
:mod:`lightning_dims.analysis.backtest`; docs/plan.md says what every number is.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from lightning_dims.analysis import backtest as bt
from lightning_dims.analysis import plan
from lightning_dims.analysis.analyse import select_spec
from lightning_dims.analysis.rows import as_mapping, rows_from_records
from lightning_dims.analysis.stats import FitError
from lightning_dims.analysis.tasks import centre_sizes, reference_properties, reference_sizes, task_exponents
from lightning_dims.cli import user_errors
from lightning_dims.errors import UsageError
from lightning_dims.records.selection import select_records

__all__ = ["build_parser", "demo_plan", "main", "plan_inputs"]

PROG = "lightning-dims plan"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split(": ", 1)[1].split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--results", help="folder searched recursively for *.record.json")
    source.add_argument("--from-wandb", metavar="ENTITY/PROJECT[/SWEEP_ID]", help="the records a W&B project's runs saved")
    parser.add_argument("--wandb-dir", default="wandb-records", help="where --from-wandb downloads the records")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--task", help='a task of the records, as the report names it (e.g. "mnist 4 vs 9")')
    mode.add_argument("--dataset", help="a dataset without runs (registry name): plan from its K_F and d_data")
    mode.add_argument("--backtest", action="store_true", help="coverage of both routes' intervals on the records")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--target-loss", type=float, help="test loss to reach (mean cross-entropy, nats)")
    target.add_argument("--target-acc", type=float, help="test accuracy to reach (own curve only: fits 1 - accuracy)")
    parser.add_argument("--arch", help="architecture whose runs to use (default: the only one in the records)")
    parser.add_argument("--classes", help="with --dataset: class pair or set, e.g. 3,8")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="with --dataset: dataset option")
    parser.add_argument("--data-root", help="with --dataset: folder holding the dataset files")
    parser.add_argument("--val-size", type=int, default=0, help="with --dataset: validation images set aside before measuring")
    parser.add_argument("--test-size", type=int, default=0, help="with --dataset: test images set aside before measuring")
    parser.add_argument("--spec", help="preprocessing spec key when the records mix several")
    parser.add_argument("--protocol", help="protocol hash when the records mix several")
    parser.add_argument("--vary", action="append", default=[], metavar="KEY", help="a config key the grid varies (as report)")
    parser.add_argument("--ref-n", type=int, help="training size of each task's K_F and d_data (default as report)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


def _size(n: float) -> str:
    """A training size in words: thousands separated, below 1 image as ``<1`` (the draws' far tail)."""
    return f"{n:,.0f}" if n >= 10 else (f"{n:.2g}" if n >= 1 else "<1")


def _interval(low: float | None, high: float | None) -> str:
    return f"[{'0' if low is None else _size(low)}, {'unbounded' if high is None else _size(high)}]"


def describe(size_plan: plan.SizePlan, who: str) -> list[str]:
    """The plan in words: the N, its interval, the method, and the warnings."""
    p = size_plan
    what = "test loss" if p.metric == "loss" else "test error (1 - accuracy)"
    lines = [f"{who} reaches {what} {p.target:.4g} at N = {_size(p.n)}, {p.level:.0%} interval {_interval(*p.interval)}",
             f"  alpha = {p.alpha:.3g} [{p.alpha_interval[0]:.3g}, {p.alpha_interval[1]:.3g}]"
             + (f"; K_F = {p.k_f:.4g}" if p.k_f is not None else "") + (f", d_data = {p.d_data:.3g}" if p.d_data is not None else ""),
             f"  rests on {len(p.tasks)} task(s) from {p.n_datasets} dataset(s): {p.method}",
             f"  {p.extrapolation:.2g}x the largest N run ({p.largest_n})"]
    if p.extrapolation > plan.EXTRAPOLATION_WARNING:
        lines.append(f"  warning: {p.extrapolation:.2g}x beyond the largest N run (more than {plan.EXTRAPOLATION_WARNING:g}x): "
                     "the power law is assumed to hold that far")
    if p.too_wide:
        low, high = p.interval
        span = "unbounded" if low is None or high is None else f"spans {high / low:.0f}x"
        lines.append(f"  too wide to act on: the interval {span} (the rule: wider than {plan.TOO_WIDE:g}x or unbounded)")
    lines += [f"  note: {note}" for note in p.notes]
    if p.floor is not None:
        lines.append(f"  fitted floor L_inf = {p.floor:.4g}")
    return lines


def measured_properties(args: argparse.Namespace, records: list, spec: str, ref_n: int, m: int) -> dict:
    """K_F and d_data of ``--dataset`` through ``measure``'s path and cache, at the records' spec, N and M."""
    from lightning_dims.commands import measure

    preprocessing = next((as_mapping(r)["preprocessing"] for r in records
                          if (as_mapping(r).get("preprocessing") or {}).get("key") == spec), None)
    if preprocessing is None or "size" not in preprocessing:
        raise UsageError(f"the records do not say their preprocessing (spec {spec}): {args.dataset} cannot be measured "
                         "comparably; re-run them with this version of fit")
    argv = ["--dataset", args.dataset, "--n", str(ref_n), "--m", str(m), "--img-size", str(preprocessing["size"]),
            "--channels", str(preprocessing["channels"]), "--intensity", preprocessing["intensity"],
            "--val-size", str(args.val_size), "--test-size", str(args.test_size), "--json", "--quiet"]
    argv += ["--classes", args.classes] if args.classes else []
    argv += ["--data-root", args.data_root] if args.data_root else []
    argv += [item for option in args.option for item in ("--option", option)]
    record = measure.measure(measure.build_parser().parse_args(argv))
    if record["preprocessing"]["key"] != spec:
        raise UsageError(f"{args.dataset} measured under spec {record['preprocessing']['key']}, the records under {spec}: "
                         "K_F and d_data are not comparable; pass --spec")
    return record


def run_backtest(rows, exponents, properties, arch: str) -> dict:
    tasks = sorted({r.task for r in rows if r.arch == arch})
    curve_rows, held = [], {}
    for task in tasks:
        n, losses = plan.curve_points(rows, arch, task)
        if not n:
            continue
        curve_rows.append(bt.curve_backtest(task, n, losses))
        largest = max(n)
        held[task] = (largest, [loss for size, loss in zip(n, losses) if size == largest])
    arch_rows = [r for r in rows if r.arch == arch]
    law_rows = bt.law_backtest(plan.law_points(exponents, properties, arch), held, centre_sizes(arch_rows)[arch],
                               max(r.n_train for r in arch_rows))
    routes = [bt.summarise("curve", curve_rows).to_json(), bt.summarise("law", law_rows).to_json()]
    return {"arch": arch, "tasks": tasks, "coverage": {r["route"]: r["coverage"] for r in routes},
            "median_relative_error": {r["route"]: r["median_relative_error"] for r in routes},
            "rows": [row for r in routes for row in r["rows"]]}


def print_backtest(result: dict) -> None:
    print(f"backtest ({result['arch']}, {len(result['tasks'])} tasks): 95% intervals for a measured loss, predicted without it")
    for route, cov in result["coverage"].items():
        how = ("each task's curve without its largest N, predicting the loss there" if route == "curve" else
               "the law fitted without the task, predicting its loss at its largest N from its K_F and d_data")
        if cov is None:
            print(f"  {route}: no prediction could be made")
        else:
            print(f"  {route} ({how}): covered {cov['k']} of {cov['n']} ({cov['fraction']:.0%}, 95% interval "
                  f"[{cov['ci'][0]:.0%}, {cov['ci'][1]:.0%}]); median relative error {result['median_relative_error'][route]:.0%}")
        for row in (row for row in result["rows"] if row["route"] == route):
            if row["covered"] is None:
                print(f"    {row['task']:<24} N = {row['n']:<5} no prediction: {row['reason']}")
            else:
                print(f"    {row['task']:<24} N = {row['n']:<5} predicted {row['predicted']:.3g} [{row['interval'][0]:.3g}, "
                      f"{row['interval'][1]:.3g}] observed {row['observed']:.3g} {'covered' if row['covered'] else 'MISSED'} "
                      f"(error {row['relative_error']:.0%})")


def plan_inputs(records: list, spec: str | None = None, ref_n: int | None = None) -> tuple:
    """(rows, spec key, per-task reference properties, per-task exponents): the report's own steps."""
    try:
        rows, spec_key = select_spec(rows_from_records(records)[0], spec)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if not rows:
        raise UsageError("no finished runs among the records: nothing to plan from (check --results)")
    return rows, spec_key, reference_properties(rows, ref_n)[0], task_exponents(rows)[0]


def demo_plan(records: list) -> None:
    """The demo's last lines: a plan for its task whose curve falls most surely (highest lower end of
    alpha's interval), to halve the loss of its largest N, and the backtest's coverage."""
    rows, _, properties, exponents = plan_inputs(records)
    if not exponents:
        print("Plan: no task has the 3 training sizes of a learning curve")
        return
    (arch, task), _ = max(exponents.items(), key=lambda item: item[1].alpha_ci[0] or -float("inf"))
    n, losses = plan.curve_points(rows, arch, task)
    at_largest = [loss for size, loss in zip(n, losses) if size == max(n)]
    target = 0.5 * float(np.exp(np.mean(np.log(at_largest))))
    print(f"Plan (lightning-dims plan --task {task!r} --target-loss {target:.3g}: half the loss of N = {max(n)}):")
    try:
        print("\n".join("  " + line for line in describe(plan.plan_from_curve(task, n, losses, target), task)))
    except plan.PlanRefused as refusal:
        print(f"  refused: {refusal}")
    result = run_backtest(rows, exponents, properties, arch)
    for route, coverage in result["coverage"].items():
        if coverage is None:
            reasons = sorted({row["reason"] for row in result["rows"] if row["route"] == route and row["reason"]})
            print(f"  backtest ({route}): no held-out prediction could be made ({'; '.join(reasons[:1])})")
        else:
            print(f"  backtest ({route}): the 95% interval covered the held-out loss in {coverage['k']} of {coverage['n']} "
                  f"tasks; median relative error {result['median_relative_error'][route]:.0%}")


def task_plan(args, rows, properties, arch: str, metric: str, target: float) -> tuple[plan.SizePlan, dict, list[str]]:
    """``--task``: the plan from the task's own curve, with its reference K_F and d_data."""
    tasks = sorted({r.task for r in rows if r.arch == arch})
    if args.task not in tasks:
        raise UsageError(f"no task {args.task!r} among the {arch} records; they hold: {', '.join(tasks)}")
    size_plan = plan.plan_from_curve(args.task, *plan.curve_points(rows, arch, args.task, metric), target, metric=metric)
    own = properties.get((arch, args.task))
    if own is not None:  # the task's own K_F and d_data at the reference N, as the report gives them
        size_plan = replace(size_plan, k_f=own.label_sharpness, d_data=own.d_data)
    return size_plan, {"task": args.task}, describe(size_plan, f"{args.task} ({arch})")


def dataset_plan(args, records, rows, spec, properties, exponents, arch: str, metric: str,
                 target: float) -> tuple[plan.SizePlan, dict, list[str]]:
    """``--dataset``: measure K_F and d_data, plan from the across-task law, and predict the FGSM penalty."""
    if metric != "loss":
        raise UsageError("--target-acc needs the task's own runs (--task): the across-task law is fitted to the loss")
    arch_rows = [r for r in rows if r.arch == arch]
    ref_n = reference_sizes(arch_rows, args.ref_n)[arch]
    m_counts = Counter(p.kf_m for (a, _), p in properties.items() if a == arch and p.label_sharpness is not None)
    if not m_counts:
        raise UsageError(f"no {arch} task has a K_F at the reference N = {ref_n}: the law cannot be fitted")
    measured = measured_properties(args, records, spec, ref_n, m_counts.most_common(1)[0][0])
    try:
        laws = plan.fit_laws(plan.law_points(exponents, properties, arch), centre_sizes(arch_rows)[arch],
                             max(r.n_train for r in arch_rows))
    except FitError as error:
        raise UsageError(f"the across-task law cannot be fitted on these records: {error}") from None
    size_plan = plan.plan_from_law(laws, measured["label_sharpness"], measured["d_data"], target, task=args.dataset)
    lines = describe(size_plan, f"{args.dataset} {measured['classes']} ({arch}; measured at N = {ref_n}, "
                                f"M = {measured['m']}, {spec})")
    own_runs = sorted({r.task for r in arch_rows if r.dataset == args.dataset})
    if own_runs:
        lines.append(f"  note: the records hold runs of {args.dataset} ({', '.join(own_runs)}); for one of those tasks "
                     "its own curve (--task) is the better plan, and the law above includes it")
    try:
        fragile = plan.fragility(plan.task_penalties(arch_rows, properties), measured["label_sharpness"])
        lines.append(f"  fragility: {fragile.text()}")
    except FitError as error:
        fragile = None
        lines.append(f"  fragility: no penalty-vs-K_F fit on these records ({error})")
    extra = {"dataset": args.dataset, "classes": measured["classes"], "ref_n": ref_n, "m": measured["m"],
             "cached": measured["cached"], "fragility": None if fragile is None else fragile.to_json()}
    return size_plan, extra, lines


def choose_arch(rows, arch: str | None) -> str:
    archs = sorted({r.arch for r in rows})
    if arch is None and len(archs) == 1:
        return archs[0]
    if arch not in archs:
        raise UsageError(f"--arch {arch}: the records hold {', '.join(archs)}; pass one of them with --arch")
    return arch


@user_errors(PROG)
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.backtest and args.target_loss is None and args.target_acc is None:
        raise UsageError("give the target: --target-loss L (nats) or --target-acc A")
    source = args.results
    if args.from_wandb is not None:
        from lightning_dims.tracking.source import wandb_records

        source = wandb_records(args.from_wandb, Path(args.wandb_dir))
    try:
        selection = select_records(source, protocol=args.protocol, vary=args.vary)
    except (FileNotFoundError, ValueError) as error:
        raise UsageError(str(error)) from None
    rows, spec, properties, exponents = plan_inputs(selection.used, args.spec, args.ref_n)
    arch = choose_arch(rows, args.arch)
    if args.backtest:
        result = run_backtest(rows, exponents, properties, arch)
        if args.json:
            print(json.dumps(result))
        else:
            print_backtest(result)
        return 0
    metric, target = ("loss", args.target_loss) if args.target_acc is None else ("error", 1.0 - args.target_acc)
    if args.task is not None:
        size_plan, extra, lines = task_plan(args, rows, properties, arch, metric, target)
    else:
        size_plan, extra, lines = dataset_plan(args, selection.used, rows, spec, properties, exponents, arch, metric, target)
    if args.json:
        print(json.dumps(size_plan.to_json() | {"arch": arch, "spec": spec} | extra))
    else:
        print("\n".join(lines))
    return 0

if __name__ == "__main__":
    sys.exit(main())
