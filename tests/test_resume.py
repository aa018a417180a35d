"""Faithful resume, with real processes: a run SIGKILLed mid-training or while testing, then resumed,
ends with the same record numbers as an uninterrupted run with the same seed (to 1e-6 on CPU) and one
continuous W&B history (the killed attempt's rows on disk, the resumed attempt's ``_step`` after them), and so
does a run preempted by SIGUSR2 under a W&B agent and requeued; a resume under another config is refused naming the keys; a run claimed by a live process is refused."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.helpers.wandb_files import settled_records

from lightning_dims.commands.fit import main
from lightning_dims.records import read_record
from lightning_dims.runs.folder import CLAIM_NAME
from lightning_dims.sweep.warm import WarmWorker
from lightning_dims.tracking.history import attempt_files, history_steps
from lightning_dims.tracking.run import wandb_run_id
from tests.helpers.fit_args import digits_fit_args
from tests.helpers.processes import child_env


def fit_args(run_dir: Path, run_id: str, callbacks: list[dict], epochs: int = 3) -> list[str]:
    """ResNet-18 on digits 3 vs 8 at 16 px with every measuring callback (fast settings) plus ``callbacks``."""
    base = json.loads(json.dumps(FAST_CALLBACKS))
    return digits_fit_args(
        run_dir, run_id, train=80, val=20, test=40, size=16, batch=20, epochs=epochs, log_every_step=False,
        extra=["--trainer.callbacks", json.dumps(base + callbacks)],
    )


FAST_CALLBACKS = [  # batch-norm recalibration too: the demo's and reproduction's runs resume with it
    {"class_path": "lightning_dims.callbacks.BatchNormRecalibration"},
    {"class_path": "lightning_dims.callbacks.DataPropertiesCallback", "init_args": {"m": 100}},
    {"class_path": "lightning_dims.callbacks.ReprDimCallback", "init_args": {"max_samples": 20, "every_n_epochs": 1}},
    {"class_path": "lightning_dims.callbacks.AdversarialEvalCallback", "init_args": {"eps": ["2/255", "8/255"]}},
]


def fit_env(**extra: str) -> dict[str, str]:
    env = child_env()
    # One intra-op thread: multi-threaded CPU kernels may split reductions differently when the
    # machine is loaded (seen once: 1.5e-4 relative after 3 epochs), which is not what this tests.
    env["OMP_NUM_THREADS"] = "1"
    return env | extra


def fit(args: list[str], cwd: Path, worker: WarmWorker | None = None, **env: str) -> subprocess.CompletedProcess:
    """``lightning-dims fit ARGS`` as its own program, or forked from ``worker`` (output in ``stderr`` either way)."""
    if worker is None:
        return subprocess.run(
            [sys.executable, "-m", "lightning_dims", "fit", *args], cwd=cwd, env=fit_env(**env), capture_output=True,
            text=True, timeout=900,
        )  # fmt: skip
    log = cwd / f"warm-{len(list(cwd.glob('warm-*.log')))}.log"
    code = worker.run(["fit", *args], cwd, fit_env(**env), log).wait()
    return subprocess.CompletedProcess(["fit", *args], code, "", log.read_text())


def numbers(record) -> dict:
    """Every number of a record that a resume must reproduce (timings and paths excluded)."""
    return {
        "test": record.test.model_dump(),
        "val": record.val.model_dump(),
        "fgsm": {eps: m.model_dump() for eps, m in record.fgsm.items()},
        "d_repr": record.d_repr,
        "label_sharpness": record.label_sharpness,
        "d_data": record.d_data,
        "epochs": record.epochs,
        "global_step": record.global_step,
        "batchnorm_recalibration": record.extra.get("batchnorm_recalibration"),
    }


def assert_same_numbers(a: dict, b: dict, path: str = "") -> None:
    assert type(a) is type(b) or {type(a), type(b)} <= {int, float}, path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            assert_same_numbers(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-9), f"{path}: {a} != {b}"
    else:
        assert a == b, path


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    done = fit(fit_args(root / "runs", "reference", []), root)
    assert done.returncode == 0, done.stderr[-3000:]
    return read_record(root / "runs" / "reference" / "reference.record.json")


@pytest.mark.slow
@pytest.mark.parametrize(
    "killer, warm",
    [
        ({"class_path": "tests.helpers.kill_callback.KillAtEpoch", "init_args": {"epoch": 2}}, False),  # mid-training, after 2 epochs
        ({"class_path": "tests.helpers.kill_callback.KillAtTest", "init_args": {}}, False),  # after training, d_repr and the attack
        ({"class_path": "tests.helpers.kill_callback.KillAtEpoch", "init_args": {"epoch": 2}}, True),  # both forked from a warm worker
    ],
    ids=["mid-training", "while-testing", "mid-training-warm"],
)
def test_sigkilled_then_resumed_run_matches_the_uninterrupted_one(tmp_path, uninterrupted, killer, warm):
    """The reference run is cold: a warm run, killed and resumed, also ends with a cold run's numbers."""
    killer = {**killer, "init_args": {**killer["init_args"], "marker": str(tmp_path / "struck")}}
    args = fit_args(tmp_path / "runs", "killed", [killer])
    worker = WarmWorker({"OMP_NUM_THREADS": "1"}) if warm else None
    try:
        killed = fit(args, tmp_path, worker)
        assert killed.returncode == -9, killed.stderr[-3000:]
        folder = tmp_path / "runs" / "killed"
        assert not (folder / "killed.record.json").exists() and (folder / CLAIM_NAME).exists()  # left claimed, by a dead pid

        resumed = fit([*args, "--ckpt_path", "last"], tmp_path, worker)  # the same worker's next run
    finally:
        if worker is not None:
            worker.close()
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "taking over the claim" in resumed.stderr
    record = read_record(folder / "killed.record.json")
    assert_same_numbers(numbers(record), numbers(uninterrupted))
    assert [a.status for a in record.attempts] == ["killed", "finished"] and record.resumed
    assert record.attempts[0].wall_time_s is not None and record.attempts[0].wall_time_s > 0
    assert record.wall_time_s == pytest.approx(sum(a.wall_time_s for a in record.attempts))
    assert record.config_hash == read_record(folder / "killed.record.json").config_hash
    assert not (folder / CLAIM_NAME).exists()
    assert_one_wandb_history(folder, "killed", attempts_share_a_file=worker is not None)  # the killed attempt's rows reached disk


@pytest.mark.slow
def test_sigusr2_preempts_a_wandb_agent_run_and_its_requeued_run_resumes_to_the_same_numbers(tmp_path, uninterrupted):
    """SLURM's ``--signal=USR2@s`` mid-training: exit 140 with ``last.ckpt``, an ``interrupted`` record and a W&B
    run marked preempting; the agent's requeue (the same command, the same ``WANDB_RUN_ID``) resumes it."""
    marker = tmp_path / "held"
    pause = {"class_path": "tests.helpers.kill_callback.PauseAtEpoch", "init_args": {"epoch": 2, "marker": str(marker)}}
    args = fit_args(tmp_path / "runs", "unused", [pause])
    args = args[: args.index("--run_id")]  # the agent's run id names the run
    agent = {"WANDB_SWEEP_ID": "sweep1", "WANDB_RUN_ID": "preempted", "WANDB_MODE": "offline"}
    command = [sys.executable, "-m", "lightning_dims", "fit", *args]
    first = subprocess.Popen(command, cwd=tmp_path, env=fit_env(**agent), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not Path(f"{marker}.run").exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert Path(f"{marker}.run").exists(), first.communicate()[1][-3000:]
    os.kill(first.pid, signal.SIGUSR2)  # held at the start of epoch 2: last.ckpt of epoch 1 is written
    stderr = first.communicate(timeout=600)[1]
    assert first.returncode == 128 + signal.SIGUSR2, stderr[-3000:]
    folder = tmp_path / "runs" / "preempted"
    assert (folder / "checkpoints" / "last.ckpt").is_file() and not (folder / CLAIM_NAME).exists()
    record = read_record(folder / "preempted.record.json")
    assert record.status == "interrupted" and record.error.startswith("preempted by SIGUSR2")
    assert [a.status for a in record.attempts] == ["interrupted"]
    (wandb_file,) = folder.glob("wandb/offline-run-*/run-preempted.wandb")
    records = [(r.WhichOneof("record_type"), r) for r in settled_records(wandb_file)]
    assert "preempting" in [kind for kind, _ in records]  # wandb.mark_preempting(): a W&B sweep requeues the run
    assert [r.exit.exit_code for kind, r in records if kind == "exit"] == [128 + signal.SIGUSR2]
    uploaded = {r.artifact.name: sorted(r.artifact.aliases) for kind, r in records if kind == "artifact"}
    assert uploaded["checkpoint-preempted"] == ["interrupted", "latest"]  # another node can resume it

    requeued = fit(args, tmp_path, **agent)
    assert requeued.returncode == 0, requeued.stderr[-3000:]
    assert "wandb agent re-runs 'preempted': resuming from" in requeued.stderr
    record = read_record(folder / "preempted.record.json")
    assert_same_numbers(numbers(record), numbers(uninterrupted))
    assert [a.status for a in record.attempts] == ["interrupted", "finished"] and record.error is None
    assert_one_wandb_history(folder, "preempted")


def assert_one_wandb_history(folder: Path, run_id: str, attempts_share_a_file: bool = False) -> None:
    """Two offline attempts, each with history on disk, the second's ``_step`` after the first's: after
    ``wandb sync`` (which uploads the folders of one run in order of start time) one continuous history.

    Forked from one warm worker, both attempts talk to the worker's W&B service, which still holds
    the killed attempt's run open: the resumed attempt continues that same offline run file.
    """
    files = attempt_files(folder / "wandb", wandb_run_id(run_id))
    assert len(files) == (1 if attempts_share_a_file else 2) and all("offline-run-" in path.parent.name for path in files)
    steps = [step for path in files for step in history_steps(path)]
    assert all(history_steps(path) for path in files)
    assert steps == list(range(len(steps))) and len(steps) >= 2  # one run of steps 0, 1, 2, ... without a restart


def test_resume_under_another_config_is_refused_naming_the_keys(tmp_path, capsys):
    marker = str(tmp_path / "struck")
    killer = [{"class_path": "tests.helpers.kill_callback.RaiseAtEpoch", "init_args": {"epoch": 1, "marker": marker}}]
    args = fit_args(tmp_path, "changed", killer, epochs=2)
    with pytest.raises(RuntimeError, match="injected failure"):
        main(args)
    changed = [arg if arg != "80" else "60" for arg in args]  # --data.train_size 80 -> 60
    assert main([*changed, "--ckpt_path", "last"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("lightning-dims fit: error: resume refused") and "data.train_size: 80 -> 60" in err
    assert main([*args, "--ckpt_path", "last"]) == 0  # the original settings resume


def test_a_run_claimed_by_a_live_process_is_refused(tmp_path, capsys):
    folder = tmp_path / "busy"
    folder.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        claim = {"host": socket.gethostname(), "pid": holder.pid, "token": "x", "started_at": "2026-11-29T00:00:00Z"}
        (folder / CLAIM_NAME).write_text(json.dumps(claim))
        assert main(fit_args(tmp_path, "busy", [], epochs=1)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"is being run by {socket.gethostname()}:{holder.pid}" in err[0]
    finally:
        holder.kill()
        holder.wait()
