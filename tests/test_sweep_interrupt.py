"""Ctrl-C on a running sweep (SIGINT to its process group): no traceback, one line saying what finished and
how to continue, exit 130; the interrupted point resumes and every point finishes exactly once."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from lightning_dims.sweep.interrupt import SignalStop, Stopped
from tests.helpers.processes import with_helpers_path
from tests.helpers.sweeps import finished_records, sweep_process, tiny_sweep, write_sweep


def test_a_signal_outside_a_sweep_is_raised_as_stopped_with_its_exit_status():
    with pytest.raises(Stopped) as stopped, SignalStop() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises in this thread first
    assert stopped.value.signum == signal.SIGTERM and stop.exit_status == 143
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


@pytest.mark.slow
def test_ctrl_c_on_a_sweep_leaves_the_point_resumable_and_a_rerun_finishes_each_once(tmp_path, monkeypatch):
    from lightning_dims.cli import main as cli

    marker = tmp_path / "held"  # the first point holds at the start of epoch 1 (last.ckpt of epoch 0 written)
    pause = {"class_path": "tests.helpers.kill_callback.PauseAtEpoch", "init_args": {"epoch": 1, "marker": str(marker)}}
    config = tiny_sweep(epochs=2, sizes=(40, 60))
    config["command"].insert(-1, f"--trainer.callbacks={json.dumps([pause])}")
    config["parameters"]["data"]["values"] = config["parameters"]["data"]["values"][:1]  # two points
    sweep = write_sweep(tmp_path, config)
    results = tmp_path / "results"
    process = sweep_process(sweep, results)
    deadline = time.monotonic() + 400
    while not Path(f"{marker}.run").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert Path(f"{marker}.run").exists(), process.communicate()[0][-3000:]
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the sweep, its warm worker and the run
    out = process.communicate(timeout=300)[0]
    assert process.returncode == 130, out[-3000:]
    assert "Traceback" not in out and "Error" not in out, out[-3000:]
    last = out.strip().splitlines()[-1]
    assert last == (
        "lightning-dims sweep: stopped by SIGINT: 0 of 2 points finished, 1 interrupted (each resumes from its last "
        f"checkpoint), 1 not started; continue with: lightning-dims sweep {sweep} --results {results}"
    ), out[-3000:]

    logs = {path.name: path.read_text() for path in (results / "logs").glob("*.log")}
    assert len(logs) == 1 and not any("Traceback" in text for text in logs.values()), logs  # nor in the run's log

    monkeypatch.setenv("PYTHONPATH", with_helpers_path(os.environ.get("PYTHONPATH")))  # the in-process rerun's children
    monkeypatch.chdir(tmp_path)
    assert cli(["sweep", str(sweep), "--results", str(results)]) == 0
    records = finished_records(results)
    assert len(records) == 2
    attempts = sorted([attempt["status"] for attempt in record["attempts"]] for record in records.values())
    assert attempts == [["finished"], ["interrupted", "finished"]]  # each point finished exactly once
    resumed = [record for record in records.values() if len(record["attempts"]) == 2]
    assert resumed[0]["hparams"]["resumed_from"] == "last" and resumed[0]["epochs"] == 2


def test_stopping_the_agent_stops_its_run_and_does_not_count_it_failed(tmp_path, monkeypatch):
    from lightning_dims.sweep.agent import AgentJob
    from tests.helpers.agents import agent_environment

    monkeypatch.chdir(tmp_path)
    started = tmp_path / "started"
    sleeper = f"import pathlib, time; pathlib.Path({str(started)!r}).touch(); time.sleep(60)"
    job = AgentJob({"command": [sys.executable, "-c", sleeper]})  # a cold run that waits to be stopped
    agent_environment(tmp_path, "agentrun5", {"model.arch": "test_resnet"}, monkeypatch)
    raised = []
    thread = threading.Thread(target=lambda: _call(job, raised))
    thread.start()
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.stop(timeout=30) == "agentrun5"
    thread.join(30)
    assert not thread.is_alive() and raised == [] and job.run_id is None
    job()  # stopping: no further run starts
    assert job.run_id is None


def _call(job, raised: list) -> None:
    try:
        job()
    except BaseException as error:  # noqa: BLE001 -- the test asserts none was raised
        raised.append(error)
