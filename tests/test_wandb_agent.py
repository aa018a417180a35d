"""``wandb agent`` fidelity and identity, with wandb's own command builder (``Agent._command_run``) and real
offline runs: the agent's argv and ours resolve to the same config; one folder per W&B run id; a
preempted agent run resumes when the agent runs it again; the record carries the sweep id."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from lightning_dims.configs import resolve_config, shipped_configs
from lightning_dims.records import read_record
from lightning_dims.sweep.grid import expand_grid, load_sweep
from lightning_dims.training.config_parser import FitConfigParser
from tests.helpers.processes import child_env



def agent_command(sweep: dict, parameters: dict, run_id: str, monkeypatch, tmp_path) -> tuple[list[str], dict]:
    """The argv and environment ``wandb agent`` would start for one grid point (its process is captured, not run)."""
    import wandb.wandb_agent as wandb_agent

    captured: dict = {}

    class CapturedProcess:
        def __init__(self, env=None, command=None, **_):
            captured.update(env=dict(env), command=list(command))

    monkeypatch.setattr(wandb_agent, "AgentProcess", CapturedProcess)
    monkeypatch.setenv("WANDB_SWEEP_ID", "sweep1")
    monkeypatch.setenv("WANDB_PROJECT", sweep.get("project", "uncategorized"))  # `wandb agent E/P/ID` sets it
    monkeypatch.setenv("WANDB_RUN_ID", "placeholder")  # the agent overwrites it; monkeypatch restores it
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    agent = wandb_agent.Agent(api=None, queue=None, sweep_id="sweep1")
    agent._sweep_command = list(sweep.get("command") or [])  # what the agent reads from the sweep's config
    agent._command_run({"run_id": run_id, "program": sweep["program"], "args": {k: {"value": v} for k, v in parameters.items()}})
    return captured["command"], captured["env"]


def fit_arguments(argv: list[str]) -> list[str]:
    return argv[argv.index("fit") + 1 :]


def sample(runs, limit: int = 40):
    """Every point of a small grid; for a large one, each data value, arch and size at least once."""
    if len(runs) <= limit:
        return runs
    seen, chosen = set(), []
    for run in runs:
        keys = {f"{name}={json.dumps(value, sort_keys=True)}" for name, value in run.parameters.items()}
        if keys - seen:
            chosen.append(run)
            seen |= keys
    return chosen


@pytest.mark.parametrize("name", shipped_configs("sweeps"))
def test_the_agents_argv_and_ours_resolve_to_the_same_config(name, monkeypatch, tmp_path):
    sweep = yaml.safe_load(resolve_config(name).read_text())
    parser = FitConfigParser()
    for run in sample(expand_grid(load_sweep(name))):
        argv, env = agent_command(sweep, run.parameters, "run1", monkeypatch, tmp_path)
        assert argv[:2] == ["/usr/bin/env", "lightning-dims"] and env["WANDB_RUN_ID"] == "run1"
        theirs = parser.dump(parser.parse(fit_arguments(argv)))
        ours = parser.dump(parser.parse(fit_arguments(run.argv)))
        assert theirs == ours, run.run_id


def test_agent_values_are_python_reprs_and_fit_takes_them(monkeypatch, tmp_path):
    sweep = {"program": "lightning-dims", "command": ["${env}", "${program}", "fit", "${args}"]}
    parameters = {"data": {"name": "synthetic", "dataset_options": {"d": 4}, "classes": None}, "test_best": True}
    argv, _ = agent_command(sweep, parameters, "r", monkeypatch, tmp_path)
    assert "--data={'name': 'synthetic', 'dataset_options': {'d': 4}, 'classes': None}" in argv and "--test_best=True" in argv
    config = FitConfigParser().parse(fit_arguments(argv))
    assert (config.data.name, config.data.dataset_options, config.data.classes, config.test_best) == ("synthetic", {"d": 4}, None, True)


@pytest.mark.slow
def test_an_agent_run_has_one_identity_and_resumes_when_rerun(monkeypatch, tmp_path):
    marker = tmp_path / "struck"
    killer = [{"class_path": "tests.helpers.kill_callback.KillAtEpoch", "init_args": {"epoch": 1, "marker": str(marker)}}]
    sweep = {
        "program": "lightning-dims",
        "project": "lightning-dims",
        "command": [
            "${env}", "${program}", "fit", "--preset=none", "--data_properties=false", "--trainer.max_epochs=2",
            "--trainer.accelerator=cpu", "--trainer.enable_progress_bar=false", f"--trainer.callbacks={json.dumps(killer)}",
            "${args}",
        ],
    }  # fmt: skip
    parameters = {"data": {"name": "digits", "classes": [3, 8], "train_size": 40, "val_size": 10, "test_size": 20, "size": 16, "batch_size": 20}}
    argv, env = agent_command(sweep, parameters, "agentrun7", monkeypatch, tmp_path)
    argv = [sys.executable, "-m", "lightning_dims", *argv[2:]]  # lightning-dims from this installation, as PATH would find it
    env = child_env(env, WANDB_MODE="offline")

    first = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == -9, first.stderr[-3000:]  # preempted (SIGKILL) after one epoch
    folder = tmp_path / "runs" / "agentrun7"
    assert (folder / "checkpoints" / "last.ckpt").is_file()
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["agentrun7"]  # the agent's run id is the folder

    again = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming from" in again.stderr
    record = read_record(folder / "agentrun7.record.json")
    assert record.run_id == "agentrun7" and record.epochs == 2 and [a.status for a in record.attempts] == ["killed", "finished"]
    assert record.wandb["id"] == "agentrun7" and record.wandb["sweep_id"] == "sweep1"
    assert record.wandb["project"] == "lightning-dims"
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["agentrun7"]
