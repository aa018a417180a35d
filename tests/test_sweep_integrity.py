"""Grid integrity with real processes: concurrent sweeps run each point once, a killed sweep resumes,
a truncated record is re-run once, changed settings re-run, stale claims are taken over, and
``report`` pools only one protocol."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lightning_dims.cli import main as cli
from lightning_dims.records import read_record
from lightning_dims.runs.claims import Claim, ClaimHeldError, StaleClaimWarning
from lightning_dims.runs.folder import CLAIM_NAME
from tests.helpers.processes import with_helpers_path
from tests.helpers.sweeps import finished_records, sweep_process, tiny_sweep, write_sweep

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_concurrent_sweeps_run_every_point_exactly_once(tmp_path):
    sweep = write_sweep(tmp_path, tiny_sweep())
    results = tmp_path / "results"
    # one sweep forks its runs from a warm worker (the default), the other starts each cold
    first, second = sweep_process(sweep, results, "--wait"), sweep_process(sweep, results, "--wait", "--cold")
    outputs = [process.communicate(timeout=900)[0] for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    records = finished_records(results)
    assert len(records) == 4 and sorted(p.name for p in results.glob("*.record.json")) == sorted(
        f"{run_id}.record.json" for run_id in records
    )  # no .v2 copies
    for run_id, record in records.items():
        assert len(record["attempts"]) == 1, record["attempts"]  # trained once, by one process
        assert not (results / "runs" / run_id / CLAIM_NAME).exists()
    summaries = [line for output in outputs for line in output.splitlines() if line.startswith("sweep ")]
    trained = [int(line.split(" finished,")[0].rsplit(" ", 1)[-1]) for line in summaries]
    assert len(summaries) == 2 and sum(trained) == 4, outputs  # together the two processes trained each point once

    # a report over the folder uses the four runs and says so
    report = subprocess.run(
        [sys.executable, "-m", "lightning_dims", "report", "--results", str(results), "--out", str(tmp_path / "report")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert "read 4 records: used 4, skipped 0" in report.stderr


@pytest.mark.slow
def test_killed_sweep_resumes_truncated_record_reruns_once_changed_setting_reruns(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", with_helpers_path(os.environ.get("PYTHONPATH")))  # the in-process sweeps' children
    # the first attempt holds at the start of epoch 1 (epoch 0's last.ckpt written) until it is killed;
    # the same callback lets every later attempt through (its marker exists), so the config is unchanged
    marker = tmp_path / "held"
    pause = {"class_path": "tests.helpers.kill_callback.PauseAtEpoch", "init_args": {"epoch": 1, "marker": str(marker)}}
    config = tiny_sweep(epochs=3, sizes=(40,), arch="resnet18")
    config["command"].insert(-1, f"--trainer.callbacks={json.dumps([pause])}")
    config["parameters"]["data"]["values"] = config["parameters"]["data"]["values"][:1]  # one point
    sweep = write_sweep(tmp_path, config)
    results = tmp_path / "results"
    (run_id,) = [line.split()[0] for line in subprocess.run(
        [sys.executable, "-m", "lightning_dims", "sweep", str(sweep), "--results", str(results), "--dry-run"],
        capture_output=True, text=True, cwd=tmp_path).stdout.splitlines()[:1]]  # fmt: skip
    process = sweep_process(sweep, results)
    deadline = time.monotonic() + 600
    while not Path(f"{marker}.run").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert Path(f"{marker}.run").exists(), process.communicate()[0][-3000:]
    assert (results / "runs" / run_id / "checkpoints" / "last.ckpt").is_file()
    os.killpg(process.pid, signal.SIGKILL)  # the sweep and its fit child, no cleanup at all
    process.wait()
    time.sleep(1)
    assert not (results / f"{run_id}.record.json").exists()

    assert cli(["sweep", str(sweep), "--results", str(results), "--dry-run"]) == 0
    assert f"{run_id}  resumable" in capsys.readouterr().out
    assert cli(["sweep", str(sweep), "--results", str(results)]) == 0  # takes the dead claim over, resumes
    assert "1 finished, 0 already done" in capsys.readouterr().out
    record = read_record(results / f"{run_id}.record.json")
    assert record.epochs == 3 and record.hparams["resumed_from"] == "last"
    assert [a.status for a in record.attempts] == ["killed", "finished"]

    # a truncated (unreadable) record: moved aside, the point re-run once, then left alone
    path = results / f"{run_id}.record.json"
    path.write_text(path.read_text()[:200])
    shutil.rmtree(results / "runs" / run_id)  # nothing to resume from: a fresh run
    with pytest.warns(UserWarning, match="moved aside"):
        assert cli(["sweep", str(sweep), "--results", str(results)]) == 0
    assert "1 finished, 0 already done" in capsys.readouterr().out
    assert cli(["sweep", str(sweep), "--results", str(results)]) == 0
    assert "0 finished, 1 already done" in capsys.readouterr().out
    assert sorted(p.name for p in results.iterdir() if p.name.startswith(run_id)) == [
        f"{run_id}.record.json",
        f"{run_id}.record.json.corrupt",
    ]

    # a changed fixed setting is a new point: it runs, and report refuses to pool the two protocols
    changed = write_sweep(tmp_path, tiny_sweep(epochs=2, sizes=(40,), arch="resnet18") | {"parameters": config["parameters"]}, "changed.yaml")
    assert cli(["sweep", str(changed), "--results", str(results)]) == 0
    assert "1 finished, 0 already done" in capsys.readouterr().out
    assert cli(["report", "--results", str(results), "--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert "mix 2 protocols" in err and "trainer.max_epochs=" in err
    protocol = err.split("protocols (settings beyond dataset, N, arch and seed differ): ")[1].split(" ")[0]
    assert cli(["report", "--results", str(results), "--out", str(tmp_path / "report"), "--protocol", protocol]) == 0
    err = capsys.readouterr().err
    assert "read 2 records: used 1, skipped 1 (1 other protocol)" in err


def test_stale_claims_are_taken_over_and_live_ones_refused(tmp_path, monkeypatch):
    live = Claim.acquire(tmp_path / "a" / CLAIM_NAME)
    try:
        with pytest.raises(ClaimHeldError, match="is being run by"):
            Claim.acquire(tmp_path / "a" / CLAIM_NAME)
    finally:
        live.release()
    assert not (tmp_path / "a" / CLAIM_NAME).exists()

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / CLAIM_NAME).write_text(
        json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout), "token": "t", "started_at": "2026-01-01T00:00:00Z"})
    )
    with pytest.warns(StaleClaimWarning, match="is gone"):
        claim = Claim.acquire(folder / CLAIM_NAME)
    assert claim.taken_over.pid == int(dead.stdout)
    claim.release()

    (folder / CLAIM_NAME).write_text(json.dumps({"host": "other-node", "pid": 1, "token": "t", "started_at": "x"}))
    old = time.time() - 3600
    os.utime(folder / CLAIM_NAME, (old, old))  # another node, no heartbeat for an hour
    monkeypatch.setenv("LIGHTNING_DIMS_CLAIM_TIMEOUT", "600")
    with pytest.warns(StaleClaimWarning, match="no heartbeat"):
        Claim.acquire(folder / CLAIM_NAME).release()
    (folder / CLAIM_NAME).write_text(json.dumps({"host": "other-node", "pid": 1, "token": "t", "started_at": "x"}))
    with pytest.raises(ClaimHeldError, match="other-node:1"):  # fresh heartbeat on another node: live
        Claim.acquire(folder / CLAIM_NAME)


def test_many_threads_racing_for_one_claim_get_exactly_one(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    def grab(_):
        try:
            return Claim.acquire(tmp_path / "race" / CLAIM_NAME)
        except ClaimHeldError:
            return None

    with ThreadPoolExecutor(8) as pool:
        claims = [c for c in pool.map(grab, range(32)) if c is not None]
    assert len(claims) == 1
    claims[0].release()
