"""Warm run workers with real processes: a run forked from a worker sees what a cold run sees (argv,
``__main__``, folder, environment, threads, stdin, signals, log) and shares the worker's W&B service; a
crashed run (SIGKILL) leaves the worker's next runs intact, each with one identity; the function
``wandb.agent`` calls gives one record under the agent's run id; the start-up probe measures both ways."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_dims.records import read_record
from lightning_dims.sweep.agent import AgentJob
from lightning_dims.sweep.grid import expand_grid
from lightning_dims.sweep.runner import RunnerControl, run_sweep
from lightning_dims.sweep.startup import StartupCost
from lightning_dims.sweep.warm import WarmWorker, exit_status, warm_arguments
from lightning_dims.tracking.sweeps import AgentRunError
from tests.helpers.agents import agent_environment
from tests.helpers.processes import child_env, with_helpers_path
from tests.helpers.sweeps import finished_records, tiny_sweep, write_sweep



def test_only_lightning_dims_fit_through_this_python_runs_warm():
    assert warm_arguments([sys.executable, "-m", "lightning_dims", "fit", "--x=1"]) == ["fit", "--x=1"]
    assert warm_arguments([sys.executable, "-m", "lightning_dims", "report"]) is None
    assert warm_arguments(["/other/python", "-m", "lightning_dims", "fit"]) is None
    assert warm_arguments([sys.executable, "train.py", "fit"]) is None
    assert [exit_status(code) for code in (None, 0, 3)] == [0, 0, 3]


def test_grid_start_up_hours_count_each_slot_once_and_the_worker_preload_once():
    cost = StartupCost(cold_s=15.0, warm_s=1.0, preload_s=8.0, runs=2)
    assert cost.grid_hours(972, 8, warm=False) == pytest.approx(972 * 15 / 8 / 3600)
    assert cost.grid_hours(972, 8, warm=True) == pytest.approx((972 * 1 / 8 + 8) / 3600)
    assert cost.grid_hours(0, 8, warm=True) == 0.0


def tiny_fit(tmp_path: Path, run_id: str, callbacks: list[dict]) -> list[str]:
    return [
        "fit", "--preset=none", "--data_properties=false", "--model.arch=test_resnet", "--data.name=digits",
        "--data.classes=[3,8]", "--data.train_size=40", "--data.val_size=10", "--data.test_size=20", "--data.size=16",
        "--data.batch_size=20", "--trainer.max_epochs=1", "--trainer.accelerator=cpu", "--trainer.enable_progress_bar=false",
        f"--trainer.callbacks={json.dumps(callbacks)}", f"--run_dir={tmp_path / 'runs'}", f"--run_id={run_id}",
    ]  # fmt: skip


def probe_env(tmp_path: Path) -> dict[str, str]:
    return child_env(PROBE_VALUE="seen", OMP_NUM_THREADS="1", WANDB_MODE="offline")


@pytest.mark.slow
def test_a_forked_run_sees_what_a_cold_run_sees_and_shares_the_workers_wandb_service(tmp_path):
    env = probe_env(tmp_path)
    facts = {}
    names = {"cold": "run-a", "warm": "run-b"}
    for mode, name in names.items():
        callbacks = [{"class_path": "tests.helpers.process_facts.ProcessFacts", "init_args": {"out": str(tmp_path / f"{name}.json")}}]
        args = tiny_fit(tmp_path, name, callbacks)
        log = tmp_path / f"{mode}.log"
        if mode == "cold":
            with log.open("w") as out:
                code = subprocess.run([sys.executable, "-m", "lightning_dims", *args], cwd=tmp_path, env=env, stdout=out,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=600).returncode  # fmt: skip
        else:
            control = RunnerControl(block_signals=(signal.SIGUSR2,))  # as a job-array task starts its workers
            worker = WarmWorker({"OMP_NUM_THREADS": "1"})
            try:
                with control.child_signals():
                    worker.start()
                # what the worker holds when it forks: W&B's idle threads, nothing that computes
                assert worker.threads_at_fork and all(name.startswith("wandb-") for name in worker.threads_at_fork)
                code = worker.run(args, tmp_path, env, log).wait()
            finally:
                worker.close()
        assert code == 0, log.read_text()[-3000:]
        facts[mode] = json.loads((tmp_path / f"{name}.json").read_text())
    cold, warm = facts["cold"], facts["warm"]
    for key in ("main_spec", "cwd", "path0", "probe_value", "torch_threads", "stdin", "sigint_is_default", "cuda_initialised"):
        assert warm[key] == cold[key], key
    assert [arg.replace("run-b", "run-a") for arg in warm["argv"]] == cold["argv"]  # the runs differ in run id and file only
    assert warm["argv"][0].endswith(os.path.join("lightning_dims", "__main__.py"))
    assert cold["main_spec"] == "lightning_dims.__main__" and warm["torch_threads"] == 1 and warm["stdin"] == ""
    assert warm["stdout_is_log"] == str(tmp_path / "warm.log")  # its own log, not the worker's output
    assert warm["usr2_blocked"] and not cold["usr2_blocked"]  # the worker's start-up mask reaches its runs
    assert cold["wandb_service_pid"] == cold["pid"]  # a cold run starts its own W&B service
    assert warm["wandb_service_pid"] == warm["ppid"] != warm["pid"]  # a warm run uses its worker's
    for name in names.values():
        record = read_record(tmp_path / "runs" / name / f"{name}.record.json")
        assert record.status == "finished" and record.run_id == name and record.wandb["id"] == name


@pytest.mark.slow
def test_a_crashed_run_leaves_the_workers_next_runs_intact_each_with_one_identity(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", with_helpers_path(os.environ.get("PYTHONPATH")))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_SERVICE", raising=False)
    config = tiny_sweep(sizes=(40, 60))
    config["parameters"]["data"]["values"] = config["parameters"]["data"]["values"][:1]
    killer = [{"class_path": "tests.helpers.kill_callback.KillAtEpoch", "init_args": {"epoch": 0}}]  # SIGKILL at once, every time
    config["parameters"] = {"trainer.callbacks": {"values": [killer, []]}, **config["parameters"]}
    runs = expand_grid(config, cwd=tmp_path)
    assert [bool(run.parameters["trainer.callbacks"]) for run in runs] == [True, True, False, False]
    results = tmp_path / "results"
    outcomes = run_sweep(runs, results, quiet=True, cwd=tmp_path)  # one slot, warm: one worker runs all four
    assert [o.status for o in outcomes] == ["failed", "failed", "finished", "finished"]
    workers = {re.search(r"# forked by warm worker (\d+)", o.log.read_text()).group(1) for o in outcomes}
    assert len(workers) == 1  # the same worker ran the two runs after the two crashes
    records = finished_records(results)
    assert sorted(records) == sorted(run.run_id for run in runs[2:])
    for run_id, record in records.items():  # one identity: folder name = record's run id = W&B run id
        folder = results / "runs" / run_id
        assert record["run_id"] == run_id and record["wandb"]["id"] == run_id and folder.is_dir()
        assert [p.name for p in (folder / "wandb").glob("offline-run-*")][0].endswith(run_id)
    for run in runs:
        assert not (results / "runs" / run.run_id / "claim.json").exists()  # the crashed runs' claims released too
    for outcome in outcomes[:2]:
        assert not (results / f"{outcome.run_id}.record.json").exists()  # SIGKILL leaves no record, as cold


@pytest.mark.slow
def test_the_function_wandb_agent_calls_gives_one_record_under_the_agents_run_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = tiny_sweep()  # its command template, as `wandb sweep` stored it on the server
    parameters = {"data": sweep["parameters"]["data"]["values"][0], "data.train_size": 40, "model.arch": "test_resnet"}
    worker = WarmWorker()
    job = AgentJob(sweep, worker)
    try:
        agent_environment(tmp_path, "agentrun3", parameters, monkeypatch)
        job()
        agent_environment(tmp_path, "agentrun4", {**parameters, "data.train_size": "forty"}, monkeypatch)
        with pytest.raises(AgentRunError, match="run agentrun4 ended with exit status 2"):
            job()  # a run that fails is an error W&B counts (here: a value fit refuses)
    finally:
        worker.close()
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["agentrun3"]  # the agent's run id is the folder
    record = read_record(tmp_path / "runs" / "agentrun3" / "agentrun3.record.json")
    assert record.status == "finished" and record.run_id == "agentrun3"
    assert record.wandb["id"] == "agentrun3" and record.wandb["sweep_id"] == "sweep7" and record.wandb["project"] == "lightning-dims"
    assert record.n_train == 40


@pytest.mark.slow
def test_the_estimate_measures_start_up_cold_and_warm_and_adds_it_to_the_total(tmp_path, capsys, monkeypatch):
    from lightning_dims.cli import main as cli

    monkeypatch.chdir(tmp_path)
    sweep = write_sweep(tmp_path, tiny_sweep())
    args = ["sweep", str(sweep), "--results", str(tmp_path / "results"), "--estimate", "--estimate-steps", "1", "--estimate-seconds", "0"]
    assert cli([*args, "--estimate-startup-runs", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    line = next(line for line in out if line.startswith("start-up per run"))
    cold, warm, preload = (float(x) for x in re.search(r"cold ([\d.]+) s, warm ([\d.]+) s \(\+ ([\d.]+) s once", line).groups())
    assert 0 < warm < cold and preload > 0
    saving = next(line for line in out if line.startswith("start-up of 4 runs on 1 slot"))
    assert "warm workers save" in saving and "the total below uses warm workers" in saving
    training = float(next(line for line in out if line.startswith("training")).split()[-1])
    total = float(next(line for line in out if line.startswith("total")).split()[-1])
    assert total >= training
    assert not (tmp_path / "results" / "runs").exists()  # the probe runs in a folder of its own
