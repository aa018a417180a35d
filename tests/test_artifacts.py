"""W&B artifacts of a run, read from real offline run files: the dataset's K_F/d_data keyed by its content
fingerprint, the record, an unfinished run's checkpoint, their lineage, and the opt-out. The resume on a
node without ``last.ckpt`` runs a real ``fit`` with ``wandb.Api`` faked at the boundary (no W&B server here)."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from tests.helpers.wandb_files import item_key, settled_records

from lightning_dims.commands.fit import main
from lightning_dims.records import read_record
from lightning_dims.tracking import artifacts
from lightning_dims.tracking.artifacts import fetch_checkpoint, resume_from_artifact, should_fetch_checkpoint
from lightning_dims.tracking.history import attempt_files
from lightning_dims.tracking.run import WandbOptions
from tests.helpers.fit_args import digits_fit_args

def tiny_args(run_dir: Path, run_id: str, *extra: str) -> list[str]:
    """timm's test_resnet on digits 3 vs 8 at 16 px, 2 epochs, failing once at the start of epoch 1."""
    failing = [{"class_path": "tests.helpers.kill_callback.RaiseAtEpoch", "init_args": {"epoch": 1, "marker": str(run_dir / "struck")}}]
    return digits_fit_args(
        run_dir, run_id, arch="test_resnet", train=40, val=10, test=20, size=16, batch=20, epochs=2, log_every_step=False,
        extra=["--trainer.callbacks", json.dumps(failing), *extra],
    )


def artifacts_of(path: Path) -> list[dict]:
    """The artifacts an offline run file logs (name, type, aliases, digest, metadata, files and their digests)."""
    return [
        {
            "name": record.artifact.name,
            "type": record.artifact.type,
            "aliases": sorted(record.artifact.aliases),
            "digest": record.artifact.digest,
            "metadata": json.loads(record.artifact.metadata or "{}"),
            "files": {entry.path: entry.digest for entry in record.artifact.manifest.contents},
        }
        for record in settled_records(path)
        if record.WhichOneof("record_type") == "artifact"
    ]


def run_artifacts_of(path: Path) -> list[dict]:
    """:func:`artifacts_of` without the code artifact that ``save_code`` logs (tests/test_wandb_code.py covers it)."""
    return [artifact for artifact in artifacts_of(path) if not artifact["name"].startswith("source-lightning-dims-")]


def md5_b64(data: bytes) -> str:
    """W&B's file digest in an artifact manifest: base64 of the MD5."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_each_attempt_logs_its_dataset_record_and_unfinished_checkpoint_with_lineage(tmp_path):
    args = tiny_args(tmp_path, "arty")
    with pytest.raises(RuntimeError, match="injected failure"):
        main(args)
    folder = tmp_path / "arty"
    failed_ckpt = (folder / "checkpoints" / "last.ckpt").read_bytes()
    assert main([*args, "--ckpt_path", "last"]) == 0
    record = read_record(folder / "arty.record.json")
    fingerprint = record.extra["data_properties"]["fingerprint"]
    assert len(fingerprint) == 64

    first, second = (run_artifacts_of(path) for path in attempt_files(folder / "wandb", "arty"))
    data = f"data-properties-{fingerprint}"
    assert [(a["name"], a["type"], a["aliases"]) for a in first] == [
        (data, "dataset-properties", ["latest"]),
        ("record-arty", "results-record", ["failed", "latest"]),
        ("checkpoint-arty", "model", ["failed", "latest"]),
    ]
    assert [(a["name"], a["aliases"]) for a in second] == [(data, ["latest"]), ("record-arty", ["finished", "latest"])]
    assert first[0]["digest"] == second[0]["digest"]  # one version per content: both attempts measured the same data
    assert first[0]["metadata"]["fingerprint"] == fingerprint
    assert first[0]["metadata"]["label_sharpness"] == record.label_sharpness
    for artifact in first[1:] + second[1:]:  # lineage: the record and checkpoint name the dataset artifact
        assert artifact["metadata"]["data_properties_artifact"] == data
        assert artifact["metadata"]["config_hash"] == record.config_hash and artifact["digest"]
    assert first[2]["files"] == {"last.ckpt": md5_b64(failed_ckpt)}
    assert second[1]["files"] == {"arty.record.json": md5_b64((folder / "arty.record.json").read_bytes())}


def test_artifacts_false_logs_none(tmp_path):
    with pytest.raises(RuntimeError, match="injected failure"):
        main(tiny_args(tmp_path, "bare", "--wandb.artifacts", "false"))
    (path,) = attempt_files(tmp_path / "bare" / "wandb", "bare")
    assert run_artifacts_of(path) == []


class FakeArtifact:
    """``wandb.Artifact`` as ``Api.artifact`` returns it: ``download(root)`` puts its files under ``root``."""

    def __init__(self, source: Path):
        self.source = source

    def download(self, root: str) -> str:
        shutil.copyfile(self.source, Path(root) / self.source.name)
        return root


class FakeApi:
    """``wandb.Api`` serving one run's checkpoint artifact; any other name is W&B's "not found" error."""

    default_entity = "lab"

    def __init__(self, artifacts: dict[str, Path]):
        self.artifacts, self.asked = artifacts, []

    def artifact(self, name: str, type: str | None = None):
        import wandb

        self.asked.append((name, type))
        if name not in self.artifacts:
            raise wandb.errors.CommError(f"artifact {name} not found")
        return FakeArtifact(self.artifacts[name])


def test_fetch_decision_and_a_missing_artifact(tmp_path):
    local = tmp_path / "last.ckpt"
    assert should_fetch_checkpoint(True, local, "online", True)
    assert not should_fetch_checkpoint(False, local, "online", True)  # a fresh start
    assert not should_fetch_checkpoint(True, local, "offline", True)  # no server to ask
    assert not should_fetch_checkpoint(True, local, "online", False)  # --wandb.artifacts false
    local.write_bytes(b"x")
    assert not should_fetch_checkpoint(True, local, "online", True)  # the local checkpoint wins
    api = FakeApi({})
    assert fetch_checkpoint(api, "lab/proj", "r1", tmp_path / "other" / "last.ckpt") is None
    assert api.asked == [("lab/proj/checkpoint-r1:latest", "model")]


def test_a_server_that_does_not_answer_is_not_asked_for_the_checkpoint(tmp_path, monkeypatch):
    import wandb

    monkeypatch.setattr(wandb, "Api", lambda **kwargs: pytest.fail("wandb.Api would retry a dead server for minutes"))
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    options = WandbOptions(mode="online", init_timeout=2)
    with pytest.warns(UserWarning, match="could not fetch run 'r1'.s checkpoint from W&B: no answer from"):
        assert resume_from_artifact(options, "r1", tmp_path / "last.ckpt", resuming=True) is None


def test_a_resume_on_a_node_without_the_checkpoint_fetches_it_from_wandb(tmp_path, monkeypatch):
    import wandb

    args = tiny_args(tmp_path, "moved", "--wandb.project", "proj")
    with pytest.raises(RuntimeError, match="injected failure"):
        main(args)
    folder = tmp_path / "moved"
    uploaded = tmp_path / "uploaded" / "last.ckpt"  # what the failed attempt's checkpoint artifact holds
    uploaded.parent.mkdir()
    (folder / "checkpoints" / "last.ckpt").replace(uploaded)  # the new node has the folder, not the checkpoint
    api = FakeApi({"lab/proj/checkpoint-moved:latest": uploaded})
    monkeypatch.setattr(wandb, "Api", lambda **kwargs: api)
    monkeypatch.setattr(artifacts, "server_problem", lambda url, timeout: None)  # the stand-in server answers
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # W&B's own run: no server, it logs offline
    assert main([*args, "--ckpt_path", "last", "--wandb.mode", "online", "--wandb.init_timeout", "2"]) == 0
    assert api.asked == [("lab/proj/checkpoint-moved:latest", "model")]
    record = read_record(folder / "moved.record.json")
    assert record.epochs == 2 and [a.status for a in record.attempts] == ["failed", "finished"]
    resumed = attempt_files(folder / "wandb", "moved")[-1]
    assert epochs_trained(resumed) == {1}  # trained epoch 1 only: it resumed from the fetched epoch-0 checkpoint


def epochs_trained(path: Path) -> set[int]:
    """The ``epoch`` of every ``train/loss`` row of an offline run file's history."""
    epochs = set()
    for record in settled_records(path):
        if record.WhichOneof("record_type") == "history":
            row = {item_key(item): json.loads(item.value_json) for item in record.history.item}
            if "train/loss" in row:
                epochs.add(int(row["epoch"]))
    return epochs
