"""Paper-grid throughput on one GPU: images/s per architecture with 1, 2, 4, 8 runs sharing the GPU, and
the grid's projected hours. Ready to run as is on a CUDA machine:

    python benchmarks/bench_gpu.py [--sweep sweeps/paper] [--runs 1,2,4,8] [--steps 20] [--json out.json]
    python benchmarks/bench_gpu.py --dry-run          # the plan only: what would be timed, nothing runs

For each (architecture, batch size, image size, precision) group of the sweep's points (the paper
grid: the six architectures at their paper batch sizes, 224 px, bf16-mixed on a bf16 GPU, each
group's most common channel count), R processes each build the network on GPU 0 (channels-last),
warm up, and then time ``--steps`` training steps (forward, backward, Adam) together on random
inputs (:func:`lightning_dims.sweep.estimate.time_concurrently`, the timer ``sweep --estimate``
uses). Images/s is the sum over the R processes. The projection: for each group, its training
images (``train_size x max_epochs`` over its points) at the best R, summed, on one GPU and on all
visible GPUs. Start-up is measured too (``--startup-runs`` tiny real runs on GPU 0, cold and forked
from a warm worker: :mod:`lightning_dims.sweep.startup`) and added at each group's best R (each of
the R runs on a GPU pays its own start-ups; a warm worker's preload once per slot); the grid's
hours are printed with warm workers (the sweep's default) and cold. Validation, test and the
callbacks (d_repr, FGSM, K_F / d_data) are not in it.

``--device cpu`` runs the same code on the CPU (slow: for checking the script, e.g. with
``--size 32 --archs resnet18 --runs 1,2 --steps 1``). The paper grid's default (6 groups x R in
1, 2, 4, 8, 20 steps, start-up 2 runs each way) is meant to finish within 10 minutes on one H200;
it has not yet run on one.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from lightning_dims.machine import usable_cores, visible_gpus
from lightning_dims.sweep.estimate import GroupCost, grid_costs, time_concurrently
from lightning_dims.sweep.grid import expand_grid, load_sweep
from lightning_dims.sweep.slots import Slot
from lightning_dims.sweep.startup import measure_startup


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", default="sweeps/paper", help="the grid to project (default: the paper's 972 runs)")
    parser.add_argument("--runs", default="1,2,4,8", help="runs sharing the GPU, comma separated")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per process")
    parser.add_argument("--archs", help="only these architectures (comma separated)")
    parser.add_argument("--size", type=int, help="image side instead of the sweep's (checking the script quickly)")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--startup-runs", type=int, default=2, help="tiny runs timed cold and warm for the start-up (0: skip)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    return parser.parse_args(argv)


def plan(args: argparse.Namespace) -> list[GroupCost]:
    groups = list(grid_costs(expand_grid(load_sweep(args.sweep), cwd=Path.cwd()), args.device).values())
    if args.archs:
        wanted = set(args.archs.split(","))
        groups = [group for group in groups if group.setting.arch in wanted]
    if args.size:
        groups = [replace(group, setting=replace(group.setting, size=args.size)) for group in groups]
    return sorted(groups, key=lambda group: group.setting.arch)


def slots_for(runs: int, device: str, gpu: str | None) -> list[Slot]:
    threads = max(1, usable_cores() // runs)
    return [Slot(gpu if device == "cuda" else None, threads)] * runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    counts = [int(part) for part in args.runs.split(",")]
    gpus = visible_gpus()
    if args.device == "cuda" and not gpus and not args.dry_run:
        print("bench_gpu: no CUDA GPU visible; run it on a GPU machine (or --device cpu to check the script)", file=sys.stderr)
        return 2
    groups = plan(args)
    where = f"GPU {gpus[0]} of {len(gpus)}" if args.device == "cuda" and gpus else args.device
    print(f"{args.sweep}: {sum(g.runs for g in groups)} runs in {len(groups)} groups; timing on {where}, "
          f"{args.steps} steps per process after 1 warm-up, runs per GPU {counts}")  # fmt: skip
    for group in groups:
        print(f"  {group.setting.describe()}: {group.runs} runs, {group.train_images:,} training images")
    if args.dry_run:
        return 0
    rows, total_hours = [], 0.0
    header = f"{'arch':<10} {'batch':>5} " + " ".join(f"{f'R={r} img/s':>12}" for r in counts) + f" {'best R':>6} {'hours (1 GPU)':>14}"
    print(header)
    for group in groups:
        rates = {r: sum(time_concurrently(group.setting, slots_for(r, args.device, gpus[0] if gpus else None), args.steps)) for r in counts}
        best = max(rates, key=rates.get)
        hours = group.train_images / rates[best] / 3600
        total_hours += hours
        rows.append({"setting": group.setting.describe(), "runs": group.runs, "train_images": group.train_images,
                     "images_per_s": rates, "best_runs_per_gpu": best, "hours_one_gpu": hours})  # fmt: skip
        print(f"{group.setting.arch:<10} {group.setting.batch_size:>5} " + " ".join(f"{rates[r]:>12.1f}" for r in counts)
              + f" {best:>6} {hours:>14.2f}", flush=True)  # fmt: skip
    devices = max(1, len(gpus)) if args.device == "cuda" else 1
    print(f"projected training hours of the grid at each arch's best R: {total_hours:.2f} on one GPU"
          + (f", {total_hours / devices:.2f} on the {devices} visible GPUs" if devices > 1 else ""))  # fmt: skip
    figures = {"rows": rows, "hours_one_gpu": total_hours, "gpus": devices}
    if args.startup_runs > 0:
        slot = slots_for(1, args.device, gpus[0] if gpus else None)[0]
        startup = measure_startup(args.startup_runs, slot)
        print(startup.describe())
        hours = {way: sum(startup.grid_hours(row["runs"], row["best_runs_per_gpu"], way == "warm") for row in rows)
                 for way in ("warm", "cold")}  # fmt: skip
        print(f"start-up of the grid at each arch's best R, one GPU: warm {hours['warm']:.2f} h, cold {hours['cold']:.2f} h; "
              f"grid (training + start-up) on one GPU: warm {total_hours + hours['warm']:.2f} h, "
              f"cold {total_hours + hours['cold']:.2f} h")  # fmt: skip
        figures["startup"] = {**vars(startup), "hours_one_gpu": hours}
    print("not included: validation and test passes, callbacks (d_repr, FGSM, K_F/d_data)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
