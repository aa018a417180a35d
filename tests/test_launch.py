"""Several runs per device, stopping a sweep, and the submitit job array (local tasks for real; the
SLURM script as submitit writes it).

The runner-level tests start real child processes (a probe program that reports what it was given);
the launcher test runs a 6-point grid of real ``fit`` runs as two concurrent local array tasks and
preempts one of them mid-run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lightning_dims.cli import main as cli
from lightning_dims.machine import visible_gpus
from lightning_dims.sweep.estimate import GroupCost, StepSetting
from lightning_dims.sweep.grid import SweepRun, expand_grid, load_sweep
from lightning_dims.sweep.launch import (
    LaunchError,
    default_tasks,
    local_slot_shares,
    parse_slurm_options,
    parse_time,
    task_shares,
)
from lightning_dims.sweep.runner import RunnerControl, run_sweep
from lightning_dims.sweep.slots import Slot, SlotError, plan_slots
from tests.helpers.processes import child_env
from tests.helpers.sweeps import finished_records, tiny_sweep, write_sweep

TESTS = Path(__file__).parent

PROBE = '''
import json, os, signal, sys, time
import torch
args = dict(arg[2:].split("=", 1) for arg in sys.argv[1:] if arg.startswith("--") and "=" in arg)
out = os.path.join(args["results_dir"], args["run_id"] + ".probe.json")
def report(**extra):
    facts = {"cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "omp": os.environ.get("OMP_NUM_THREADS"),
             "threads": torch.get_num_threads(), "pid": os.getpid(),
             "usr2_blocked": signal.SIGUSR2 in signal.pthread_sigmask(signal.SIG_BLOCK, []), **extra}
    with open(out, "w") as handle:
        json.dump(facts, handle)
signal.signal(signal.SIGTERM, lambda *_: (report(ended="SIGTERM"), sys.exit(3)))
report(ended=None)
time.sleep(float(args.get("sleep", "0")))
report(ended="slept")
'''


def probe_runs(folder: Path, count: int, sleep: float = 0.0) -> list[SweepRun]:
    probe = folder / "probe.py"
    probe.write_text(PROBE)
    return [SweepRun(f"p{index}", {"i": index}, [sys.executable, str(probe), f"--sleep={sleep}"]) for index in range(count)]


def probed(results: Path, run_id: str) -> dict:
    return json.loads((results / f"{run_id}.probe.json").read_text())


# ---- slots --------------------------------------------------------------------------------------------
def test_slots_deal_gpus_round_robin_and_split_the_cores():
    slots = plan_slots(["0", "1"], cores=16, runs_per_device=3)
    assert [slot.gpu for slot in slots] == ["0", "1", "0", "1", "0", "1"]
    assert {slot.threads for slot in slots} == {2}  # 16 cores // 6 runs
    assert slots[0].environment() == {"CUDA_VISIBLE_DEVICES": "0", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    assert plan_slots(["GPU-a1"], cores=4) == [Slot("GPU-a1", 4)]
    assert plan_slots([], cores=16, workers=4) == [Slot(None, 4)] * 4
    assert plan_slots([], cores=2, workers=3) == [Slot(None, 1)] * 3  # never below one thread
    assert plan_slots([], cores=8, runs_per_device=2) == [Slot(None, 4)] * 2  # the CPU is the one device
    assert plan_slots([], cores=8) == [Slot(None, 8)]
    with pytest.raises(SlotError, match="--workers splits CPU cores, but 2 GPU"):
        plan_slots(["0", "1"], cores=8, workers=2)
    with pytest.raises(SlotError, match="at least 1"):
        plan_slots([], cores=8, runs_per_device=0)


def test_each_run_process_gets_its_slot_gpu_and_threads(tmp_path):
    results = tmp_path / "results"
    slots = plan_slots(["0", "1"], cores=4, runs_per_device=2)  # 4 slots, 1 thread each
    outcomes = run_sweep(probe_runs(tmp_path, 4, sleep=2.0), results, slots=slots, quiet=True)
    assert [o.status for o in outcomes] == ["failed"] * 4  # a probe writes no results record
    seen = [probed(results, f"p{index}") for index in range(4)]
    assert sorted(fact["cuda"] for fact in seen) == ["0", "0", "1", "1"]  # all four at once: two per GPU
    assert all(fact["omp"] == "1" and fact["threads"] == 1 for fact in seen)  # torch took the slot's thread count
    log = (results / "logs" / "p0.log").read_text().splitlines()[0]
    assert log.startswith("$ CUDA_VISIBLE_DEVICES=") and "OMP_NUM_THREADS=1" in log

    cpu = run_sweep(probe_runs(tmp_path, 2), tmp_path / "cpu", slots=plan_slots([], cores=2, workers=2), quiet=True)
    assert len(cpu) == 2 and all(probed(tmp_path / "cpu", f"p{i}")["threads"] == 1 for i in range(2))


def test_a_stopped_sweep_terminates_its_children_starts_nothing_more_and_blocks_the_requeue_signal(tmp_path):
    results = tmp_path / "results"
    control = RunnerControl(block_signals=(signal.SIGUSR2,))
    runs = probe_runs(tmp_path, 3, sleep=60)
    done: list = []
    sweep = threading.Thread(target=lambda: done.append(run_sweep(runs, results, slots=[Slot()], quiet=True, control=control)))
    sweep.start()
    deadline = time.monotonic() + 60
    while not (results / "p0.probe.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    first = probed(results, "p0")
    assert first["usr2_blocked"] is True
    os.kill(first["pid"], signal.SIGUSR2)  # what SLURM sends every process of the step: the child ignores it
    time.sleep(0.5)
    assert probed(results, "p0")["ended"] is None
    control.stop()
    assert control.wait_idle(30)
    sweep.join(30)
    assert [o.status for o in done[0]] == ["stopped", "stopped", "stopped"]
    assert probed(results, "p0")["ended"] == "SIGTERM"
    assert not (results / "p1.probe.json").exists() and not (results / "runs" / "p0" / "claim.json").exists()


# ---- launcher options ----------------------------------------------------------------------------------
def test_time_limits_and_slurm_options_parse_as_sbatch_reads_them():
    assert [parse_time(t) for t in ("90", "30:30", "12:00:00", "2-00", "1-02:30", "0-00:00:01")] == [90, 31, 720, 2880, 1590, 1]
    for bad in ("", "12h", "0", "1:2:3:4"):
        with pytest.raises(LaunchError, match="--time"):
            parse_time(bad)
    assert parse_slurm_options(["account=lab", "--mem=64G", "constraint=a100|h100"]) == {
        "account": "lab", "mem": "64G", "constraint": "a100|h100"
    }  # fmt: skip
    with pytest.raises(LaunchError, match="KEY=VALUE"):
        parse_slurm_options(["account"])


def test_shares_are_disjoint_strides_and_local_slots_are_dealt_among_tasks():
    runs = [SweepRun(f"r{i}", {}, []) for i in range(7)]
    shares = task_shares(runs, 3)
    assert [[run.run_id for run in share] for share in shares] == [["r0", "r3", "r6"], ["r1", "r4"], ["r2", "r5"]]
    assert len(task_shares(runs, 20)) == 7  # never an empty task
    assert default_tasks(972, 8) == 122 and default_tasks(5, 8) == 1
    slots = plan_slots([], cores=4, workers=4)
    assert local_slot_shares(slots, 2) == [[Slot(None, 1)] * 2] * 2
    with pytest.raises(LaunchError, match="takes 4 runs at once"):
        local_slot_shares(slots, 5)


def six_points(folder: Path, extra: list[str] = ()) -> Path:
    config = tiny_sweep(epochs=2, sizes=(40, 50, 60))
    config["command"] = config["command"][:-1] + list(extra) + ["${args}"]
    return write_sweep(folder, config)


def test_the_slurm_script_is_submitits_own_and_checked_without_a_cluster(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = six_points(tmp_path)
    results = tmp_path / "results"
    args = ["sweep", str(sweep), "--results", str(results), "--launcher", "slurm", "--partition", "gpu",
            "--gpus-per-task", "1", "--runs-per-device", "4", "--cpus-per-task", "8", "--time", "12:00:00",
            "--array-parallelism", "8", "--slurm-option", "account=lab", "--slurm-setup", "source .venv/bin/activate"]  # fmt: skip
    assert cli([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    script = out.split("# sbatch script for 2 array tasks (6 points):\n")[1]
    jobs = results.resolve() / "jobs"
    assert script.strip().splitlines() == [
        "#!/bin/bash",
        "",
        "# Parameters",
        "#SBATCH --account=lab",
        "#SBATCH --array=0-1%2",  # ceil(6 points / (1 GPU x 4 runs)) = 2 tasks
        "#SBATCH --cpus-per-task=8",
        f"#SBATCH --error={jobs}/%A_%a_0_log.err",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --job-name=lightning-dims-tiny",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --open-mode=append",
        f"#SBATCH --output={jobs}/%A_%a_0_log.out",
        "#SBATCH --partition=gpu",
        "#SBATCH --signal=USR2@90",
        "#SBATCH --time=720",
        "#SBATCH --wckey=submitit",
        "",
        "# setup",
        "source .venv/bin/activate",
        "",
        "# command",
        "export SUBMITIT_EXECUTOR=slurm",
        f"srun --unbuffered --output {jobs}/%A_%a_%t_log.out --error {jobs}/%A_%a_%t_log.err --cpus-per-task=8 "
        f"{sys.executable} -u -m submitit.core._submit {jobs}",  # the step gets the job's cpus (Slurm 22.05-23.02)
    ]
    assert "6 points: 6 new" in out and "checked 6 commands (one parse per command shape and parameter value): none would fail" in out

    # without SLURM here, submitting is one line naming the fix; nothing is written
    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm"))
    assert cli(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'Could not detect "srun"' in err[0] and "--dry-run prints the sbatch script" in err[0]
    assert not jobs.exists()


def children_of(pid: int) -> list[int]:
    return [int(child) for thread in Path(f"/proc/{pid}/task").iterdir() for child in (thread / "children").read_text().split()]


def task_pid_and_child(run_folder: Path) -> tuple[int, int]:
    """The pid holding the run's claim (the array task) and the process running its fit (the task's
    child, or the child of the task's warm worker)."""
    task = json.loads((run_folder / "claim.json").read_text())["pid"]
    (child,) = children_of(task)
    worker = Path(f"/proc/{child}/cmdline").read_text()
    if "lightning_dims.sweep.warm" in worker:  # its children: the forked run (same command line) and W&B's service
        (child,) = [pid for pid in children_of(child) if Path(f"/proc/{pid}/cmdline").read_text() == worker]
    return task, child


@pytest.mark.slow
def test_local_job_array_runs_each_point_once_and_a_preempted_task_is_requeued_and_resumes(tmp_path):
    marker = tmp_path / "held"
    pause = [{"class_path": "tests.helpers.kill_callback.PauseAtEpoch", "init_args": {"epoch": 1, "marker": str(marker)}}]
    sweep = six_points(tmp_path, [f"--trainer.callbacks={json.dumps(pause)}"])
    results = tmp_path / "results"
    env = child_env()
    launcher = subprocess.Popen(
        [sys.executable, "-m", "lightning_dims", "sweep", str(sweep), "--results", str(results),
         "--launcher", "local", "--workers", "2"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 600
    while not Path(f"{marker}.run").exists() and launcher.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert Path(f"{marker}.run").exists(), launcher.communicate()[0]
    held = Path(Path(f"{marker}.run").read_text())  # a run holding at epoch 1, last.ckpt of epoch 0 written
    assert (held / "checkpoints" / "last.ckpt").is_file()
    task, child = task_pid_and_child(held)
    os.kill(child, signal.SIGUSR2)  # SLURM signals every process of the step; the fit child must not die of it
    time.sleep(1)
    os.kill(task, signal.SIGUSR2)  # submitit's requeue signal to the array task
    output = launcher.communicate(timeout=900)[0]
    assert launcher.returncode == 0, output

    runs = expand_grid(load_sweep(sweep), cwd=tmp_path)
    records = finished_records(results)
    assert sorted(records) == sorted(run.run_id for run in runs) and len(records) == 6  # each point once
    resumed = records[held.name]
    assert [a["status"] for a in resumed["attempts"]] == ["interrupted", "finished"]
    assert resumed["hparams"]["resumed_from"] == "last" and resumed["epochs"] == 2
    for run_id, record in records.items():
        if run_id != held.name:
            assert [a["status"] for a in record["attempts"]] == ["finished"], run_id
        assert not (results / "runs" / run_id / "claim.json").exists()

    # two tasks at once: their shares' attempts overlap in time
    shares = [[run.run_id for run in runs[i::2]] for i in range(2)]
    spans = [
        (min(a["started_at"] for r in share for a in records[r]["attempts"]),
         max(a["ended_at"] for r in share for a in records[r]["attempts"]))
        for share in shares
    ]  # fmt: skip
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1], spans
    logs = "".join(path.read_text() for path in (results / "jobs").glob("*_log.out"))
    assert "requeue signal; stopping the running points" in logs and logs.count(": 3 points") == 3  # 2 starts + 1 requeue
    assert "task 1/2: 3 points" in logs and "task 2/2: 3 points" in logs
    assert "6 of 6 points finished" in output


def test_estimate_counts_the_grids_images_and_times_steps_with_the_chosen_workers(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = six_points(tmp_path)
    args = ["sweep", str(sweep), "--results", str(tmp_path / "results"), "--estimate", "--estimate-steps", "3", "--workers", "2"]
    assert cli([*args, "--estimate-startup-runs", "0", "--estimate-seconds", "0"]) == 0  # the start-up probe: tests/test_warm.py
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("estimate: 6 of 6 points not finished; this machine: 2 runs at once")
    row = next(line for line in out if line.startswith("test_resnet")).split()
    # 2 datasets x train sizes 40 + 50 + 60, 2 epochs each; batch 20 at 16 px, 1 channel, float32 on the CPU
    assert row[:7] == ["test_resnet", "6", "600", "20", "16", "1", "32-true"]
    images_per_s, hours = float(row[7].replace(",", "")), float(row[8].replace(",", ""))
    assert images_per_s > 0 and hours == pytest.approx(600 / images_per_s / 3600, abs=0.051)
    assert row[9] == "-" and row[10] == "0.4M"  # one architecture calibrates: no spread to tell; test_resnet's 0.37M parameters
    assert float(row[11].replace(",", "")) == pytest.approx(1000 / images_per_s, rel=0.01)  # ms per image on the one device
    assert 0.005 < float(row[12]) < 0.5  # GFLOP per image of a training step at 16 px, counted
    assert any(line.startswith("predicted: images/s = processes / (FLOPs per image x") for line in out)
    total = next(line for line in out if line.startswith("total")).split()
    assert total[:3] == ["total", "6", "600"] and total == ["total"] + next(l for l in out if l.startswith("training")).split()[1:]
    assert "start-up: not measured (--estimate-startup-runs 0), not in the total" in out
    assert any("2 processes at once on the CPU (1 thread each)" in line for line in out)
    assert any(line.startswith("not timed: validation (120 images") for line in out)  # val_size 10 x 2 epochs x 6
    assert not (tmp_path / "results" / "runs").exists()  # nothing ran
    setting = StepSetting("vgg19", 6, 224, 1, "bf16-mixed", "cuda")
    assert GroupCost(setting, runs=2, train_images=18_000, images_per_s=2.5).hours == 2.0  # 18,000 / 2.5 / 3600


@pytest.mark.slow
def test_the_gpu_benchmark_script_runs_its_code_paths_on_the_cpu(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(TESTS.parent / "benchmarks"))
    from bench_gpu import main as bench_gpu

    sweep = six_points(tmp_path)
    assert bench_gpu(["--sweep", str(sweep), "--dry-run"]) == 0
    assert "  test_resnet batch 20 at 16 px, 1 ch" in capsys.readouterr().out
    out = tmp_path / "gpu.json"
    args = ["--sweep", str(sweep), "--device", "cpu", "--runs", "1,2", "--steps", "1", "--size", "16", "--json", str(out),
            "--startup-runs", "1"]  # fmt: skip
    assert bench_gpu(args) == 0
    figures = json.loads(out.read_text())
    startup = figures["startup"]  # measured cold and warm, added to the grid's hours both ways
    assert 0 < startup["warm_s"] < startup["cold_s"] and 0 < startup["hours_one_gpu"]["warm"] < startup["hours_one_gpu"]["cold"]
    assert "grid (training + start-up) on one GPU: warm" in capsys.readouterr().out
    (row,) = figures["rows"]
    rates = {int(r): rate for r, rate in row["images_per_s"].items()}
    assert sorted(rates) == [1, 2] and min(rates.values()) > 0 and row["train_images"] == 600
    best = max(rates, key=rates.get)
    assert row["best_runs_per_gpu"] == best and row["hours_one_gpu"] == pytest.approx(600 / rates[best] / 3600)
    assert figures["hours_one_gpu"] == pytest.approx(row["hours_one_gpu"])
    if not visible_gpus():  # on a machine without a GPU, asking for one is one clear line
        assert bench_gpu(["--sweep", str(sweep)]) == 2
        assert "no CUDA GPU visible" in capsys.readouterr().err


def test_job_array_options_without_their_launcher_are_one_line_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = str(six_points(tmp_path))
    assert cli(["sweep", sweep, "--partition", "gpu", "--time", "10"]) == 2
    assert capsys.readouterr().err.strip() == (
        "lightning-dims sweep: error: --time, --partition: apply only with --launcher slurm or local"
    )
    assert cli(["sweep", sweep, "--launcher", "local", "--gpus-per-task", "1"]) == 2
    assert capsys.readouterr().err.strip() == "lightning-dims sweep: error: --gpus-per-task: applies only with --launcher slurm"
    assert cli(["sweep", sweep, "--launcher", "local", "--workers", "2", "--tasks", "3"]) == 2
    assert "--tasks 3: the local launcher runs every task at once, and this machine takes 2 runs at once" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()
