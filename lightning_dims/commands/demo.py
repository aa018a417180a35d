"""``lightning-dims demo [--out DIR]``: the whole pipeline on embedded data, on a CPU, in minutes.

1. measures K_F and d_data of the three embedded datasets (natural ``digits`` 3 vs 8, medical
   ``brain-tissue``, ``synthetic`` with d = 8) under the demo's spec (32 px, 1 channel, max 255);
2. runs ``sweeps/quick.yaml`` (ResNet-18, three training sizes per dataset, the cheap callbacks:
   K_F/d_data, d_repr, FGSM) through ``lightning-dims sweep``, W&B offline unless configured;
3. writes the report (``report.md``, figures, ``fits.json``) from the results records.

Re-running continues where it stopped: finished runs are kept, interrupted ones resume.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from lightning_dims.analysis.report import write_report
from lightning_dims.cli import user_errors
from lightning_dims.records import read_records
from lightning_dims.sweep.grid import expand_grid, load_sweep
from lightning_dims.sweep.runner import run_sweep

DEMO_SWEEP = "sweeps/quick"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightning-dims demo", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("--out", default="demo-out", help="folder for results, run folders and the report")
    parser.add_argument(
        "--sweep", default=DEMO_SWEEP,
        help="grid sweep to run: a file or a shipped sweep (default: sweeps/quick, shipped with the package)",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="training runs at once")
    return parser


def measure_tasks(runs) -> list[dict]:
    """K_F and d_data of each distinct dataset task of the sweep, at its smallest training size."""
    from lightning_dims.data import DimsDataModule

    tasks: dict[str, tuple[dict, list[int]]] = {}  # task as canonical JSON -> (data args, its training sizes)
    for run in runs:
        data = dict(run.parameters.get("data", {}))
        _, sizes = tasks.setdefault(json.dumps(data, sort_keys=True), (data, []))
        if run.parameters.get("data.train_size") is not None:
            sizes.append(run.parameters["data.train_size"])
    rows = []
    for data, sizes in tasks.values():
        datamodule = DimsDataModule(**data, **({"train_size": min(sizes)} if sizes else {}))
        datamodule.setup("fit")
        rows.append({"dataset": data["name"], "domain": datamodule.domain, **datamodule.dataset_properties()})
    return rows


@user_errors("lightning-dims demo")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    sweep_file = args.sweep
    started = time.perf_counter()
    runs = expand_grid(load_sweep(sweep_file), cwd=Path.cwd())

    print("1/3 dataset properties (32 px, 1 channel, per-image max 255; K_F in 1/intensity units)")
    for row in measure_tasks(runs):
        print(f"    {row['dataset']:<13} {row['domain']:<9} N={row.get('n', '?'):<5} K_F={row['label_sharpness']:.3e}  "
              f"d_data={row['d_data']:.2f}")

    print(f"2/3 training {len(runs)} runs from {sweep_file} (records in {out / 'results'}; logs in {out / 'results' / 'logs'})")
    outcomes = run_sweep(runs, out / "results", workers=args.workers)
    failed = [o for o in outcomes if o.status == "failed"]

    print(f"3/3 report -> {out / 'report'}")
    fits = write_report(read_records(out / "results"), out / "report")
    for domain, entry in fits["generalization"].items():
        law = entry["log_loss_vs_log_n_over_d_data"]
        print(f"    {domain:<10} log test loss vs log N / d_data: slope {law['slope']:.2f} (R^2 {law['r2']:.2f}, {entry['n_runs']} runs)")
    pooled = fits["robustness"].get("all")
    if pooled:
        print(f"    FGSM loss penalty vs K_F: Pearson {pooled['pearson']:.2f}, Spearman {pooled['spearman']:.2f} ({pooled['n']} runs)")
    representations = fits["representations"]
    if representations["n_runs"]:
        print(f"    d_repr <= d_data in {representations['fraction_below']:.0%} of {representations['n_runs']} runs")
    print(f"done in {time.perf_counter() - started:.0f} s: open {out / 'report' / 'report.md'}")
    if failed:
        print(f"{len(failed)} runs failed (logs: {', '.join(str(o.log) for o in failed)}); re-run to retry", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
