"""Results in W&B, on real offline runs: every run saves its record into its W&B run,
``report --from-wandb`` reads them back through W&B's public API and writes the report a folder gives,
and every key a dashboard panel plots is one that the runs log.

There is no W&B server here: the API is :class:`wandb_files.OfflineApi`, which serves the offline
runs' files (what ``wandb sync`` uploads) through the same calls, with the same signatures, as
``wandb.apis.public`` (checked below against the installed wandb).
"""

from __future__ import annotations

import filecmp
import inspect
import json
import math
from pathlib import Path

import pytest
from tests.helpers.wandb_files import OfflineApi, OfflineFile, OfflineRunView, offline_run

from lightning_dims.commands.fit import main as fit_main
from lightning_dims.commands.report import WANDB_DOWNLOADS
from lightning_dims.commands.report import main as report_main
from lightning_dims.records import read_record, read_records
from lightning_dims.records.schema import WANDB_RECORD_FILE
from lightning_dims.records.selection import select_records
from lightning_dims.tracking.dashboard_spec import dashboard_spec
from lightning_dims.tracking.results import save_record_to_wandb
from lightning_dims.tracking.source import parse_wandb_path, wandb_records
from tests.helpers.fit_args import digits_fit_args

def digits_run(run_dir: Path, run_id: str, train_size: int) -> list[str]:
    """A small ResNet-18 run on digits 3 vs 8 with every callback (callbacks/fast: K_F, d_data, d_repr, FGSM)."""
    return ["--config", "callbacks/fast", *digits_fit_args(run_dir, run_id, train=train_size, val=20, test=50, size=16, batch=20, epochs=2, log_every_step=False)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Two finished offline runs (N = 40 and 60) under ``<root>/runs``."""
    root = tmp_path_factory.mktemp("wandb-results")
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "WANDB_MODE": "offline", "WANDB_DIR": root, "WANDB_CACHE_DIR": root / "wandb-cache",
            "WANDB_CONFIG_DIR": root / "wandb-config", "LIGHTNING_DIMS_CACHE": root / "property-cache",
        }.items():  # fmt: skip
            env.setenv(name, str(value))
        for run_id, n in (("n40", 40), ("n60", 60)):
            assert fit_main(digits_run(root / "runs", run_id, n)) == 0
    return root / "runs"


def folders(runs: Path) -> list[Path]:
    return sorted(path for path in runs.iterdir() if path.is_dir())


def test_each_run_saves_its_record_into_its_wandb_run(runs):
    for folder in folders(runs):
        wandb = offline_run(folder)
        assert WANDB_RECORD_FILE in wandb["files"]  # a files record: `wandb sync` uploads it
        saved = wandb["files_dir"] / WANDB_RECORD_FILE
        assert not saved.is_symlink() and filecmp.cmp(saved, folder / f"{folder.name}.record.json", shallow=False)
        assert read_record(saved).status == "finished"


def test_report_from_wandb_equals_report_from_the_folder(runs, tmp_path, monkeypatch, capsys):
    import wandb

    api = OfflineApi(folders(runs))
    monkeypatch.setattr(wandb, "Api", lambda *args, **kwargs: api)
    assert report_main(["--from-wandb", "my-team/lightning-dims", "--out", str(tmp_path / "from-wandb")]) == 0
    from_wandb = capsys.readouterr()
    assert report_main(["--results", str(runs), "--out", str(tmp_path / "from-folder")]) == 0
    from_folder = capsys.readouterr()

    assert api.calls == [("my-team/lightning-dims", {})]
    assert "read 2 records: used 2, skipped 0" in from_wandb.err and "read 2 records: used 2, skipped 0" in from_folder.err
    assert "report of 2 runs" in from_wandb.out
    downloaded = sorted((tmp_path / "from-wandb" / WANDB_DOWNLOADS).rglob("*"))
    assert [p.name for p in downloaded] == ["n40.record.json", "n60.record.json"]  # a results folder itself
    written = sorted(p.name for p in (tmp_path / "from-folder").iterdir())
    assert written == sorted(p.name for p in (tmp_path / "from-wandb").iterdir() if p.name != WANDB_DOWNLOADS)
    for name in ("fits.json", "report.md"):
        assert (tmp_path / "from-wandb" / name).read_text() == (tmp_path / "from-folder" / name).read_text()
    fits = json.loads((tmp_path / "from-wandb" / "fits.json").read_text())
    assert fits["n_runs"] == 2


def test_wandb_records_skips_runs_without_a_finished_record(runs, tmp_path):
    """A W&B run that is not ours (no record) and one still running are skipped with the reason."""
    import wandb

    foreign = wandb.init(project="lightning-dims", dir=tmp_path / "foreign", mode="offline", id="foreign1")
    foreign.log({"x": 1.0})
    foreign.finish()
    api = OfflineApi([*folders(runs), tmp_path / "foreign"])
    api.views[0].state = "running"  # as the server shows a run whose node is still training

    scan = wandb_records("me/lightning-dims", tmp_path / "records", api=api)
    assert [record.run_id for _, record in scan.records] == ["n60"]
    assert scan.missing == [
        ("me/lightning-dims/n40", "not finished: W&B state running"),
        ("me/lightning-dims/foreign1", f"no record: the W&B run has no {WANDB_RECORD_FILE}"),
    ]
    selection = select_records(scan)
    assert [record.run_id for record in selection.used] == ["n60"]
    assert selection.summary() == "read 3 records: used 1, skipped 2 (1 no record, 1 not finished)"


def test_sweep_path_asks_wandb_for_that_sweep_only(runs, tmp_path, monkeypatch, capsys):
    import wandb

    api = OfflineApi(folders(runs))  # runs outside any sweep
    monkeypatch.setattr(wandb, "Api", lambda *args, **kwargs: api)
    assert report_main(["--from-wandb", "me/lightning-dims/abc123", "--out", str(tmp_path / "out")]) == 2
    assert api.calls == [("me/lightning-dims", {"sweep": "abc123"})]
    assert capsys.readouterr().err.strip() == (
        "lightning-dims report: error: W&B holds no runs in sweep abc123 of me/lightning-dims: "
        "check the entity, project and sweep id"
    )


def test_sweep_path_reads_that_sweeps_runs_back(runs, tmp_path, monkeypatch, capsys):
    """The positive sweep case: the sweep's runs (real records) are read back, a run outside the sweep is not asked for."""
    import wandb

    outside = wandb.init(project="lightning-dims", dir=tmp_path / "outside", mode="offline", id="outside1")
    outside.finish()
    api = OfflineApi([*folders(runs), tmp_path / "outside"])
    for view in api.views[:2]:
        view.sweep_id = "sw42"  # as the server files runs an agent started for sweep sw42
    monkeypatch.setattr(wandb, "Api", lambda *args, **kwargs: api)
    assert report_main(["--from-wandb", "me/lightning-dims/sw42", "--out", str(tmp_path / "out")]) == 0
    assert api.calls == [("me/lightning-dims", {"sweep": "sw42"})]
    assert "read 2 records: used 2, skipped 0" in capsys.readouterr().err  # the run outside the sweep never came
    downloaded = tmp_path / "out" / WANDB_DOWNLOADS
    for run_id in ("n40", "n60"):
        assert filecmp.cmp(downloaded / f"{run_id}.record.json", runs / run_id / f"{run_id}.record.json", shallow=False)
    assert json.loads((tmp_path / "out" / "fits.json").read_text())["n_runs"] == 2


def test_a_second_download_replaces_the_old_copy_whole(runs, tmp_path):
    api = OfflineApi(folders(runs))
    first = wandb_records("me/lightning-dims", tmp_path, api=api)
    (tmp_path / "n40.record.json").write_text("{truncated")
    again = wandb_records("me/lightning-dims", tmp_path, api=api)
    assert [r.model_dump() for _, r in again.records] == [r.model_dump() for _, r in first.records]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n40.record.json", "n60.record.json"]  # no staging left


@pytest.mark.parametrize("path", ["lightning-dims", "a/b/c/d", "a//b", ""])
def test_bad_wandb_paths_are_one_line_errors(path, tmp_path, capsys):
    assert report_main(["--from-wandb", path, "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"lightning-dims report: error: --from-wandb takes ENTITY/PROJECT or ENTITY/PROJECT/SWEEP_ID, got {path!r}"
    )
    assert parse_wandb_path("team/proj/sw1") == ("team", "proj", "sw1")


def test_without_a_login_report_from_wandb_says_how_to_log_in(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    assert report_main(["--from-wandb", "me/proj", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lightning-dims report: error: cannot use the W&B API (") and "wandb login" in err
    assert not (tmp_path / "out").exists()


def test_the_stand_in_has_the_public_api_signatures():
    """The calls the adapter makes exist in the installed wandb with these parameters."""
    from wandb.apis.public import Api, File, Run

    def parameters(function) -> list[str]:
        return list(inspect.signature(function).parameters)

    assert parameters(OfflineApi.runs) == parameters(Api.runs)
    assert parameters(OfflineRunView.files) == parameters(Run.files)
    assert parameters(OfflineFile.download) == parameters(File.download)
    assert isinstance(Run.id, property) and isinstance(Run.state, property)


def test_a_wandb_failure_while_saving_the_record_is_a_warning(tmp_path, monkeypatch):
    from lightning.pytorch.loggers import WandbLogger

    logger = WandbLogger(project="lightning-dims", save_dir=str(tmp_path), mode="offline")
    record = tmp_path / "r.record.json"
    record.write_text("{}")
    try:
        monkeypatch.setattr(type(logger.experiment), "save", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
        with pytest.warns(UserWarning, match=r"could not save the results record .*r\.record\.json to the W&B run: disk full"):
            assert save_record_to_wandb([logger], record) == []
    finally:
        logger.experiment.finish()


def test_every_dashboard_key_is_logged_by_a_real_run(runs):
    """Each panel's summary, config and history key is in the offline W&B run of a real fit."""
    spec = dashboard_spec("me", "lightning-dims", archs=["resnet18"], estimator="twonn")
    for folder in folders(runs):
        wandb = offline_run(folder)
        logged = {
            "summary": set(wandb["summary"]),
            "config": set(wandb["config"]),
            "history": {key for row in wandb["history"] for key in row},
        }
        missing = sorted(str(key) for key in spec.keys() if key.name not in logged[key.section])
        assert not missing, f"{folder.name}: panels use keys the run does not log: {missing}"
        (record,) = read_records(folder)
        summary, config = wandb["summary"], wandb["config"]
        assert summary["test/loss"] == pytest.approx(record.test.loss)  # final weights
        assert summary["data/label_sharpness"] == pytest.approx(record.label_sharpness)
        assert summary["data/log_n_over_d_data"] == pytest.approx(math.log(record.n_train) / record.d_data)
        assert summary["d_repr/penultimate/twonn"] == pytest.approx(record.d_repr["layer4"]["twonn"])  # ResNet: layer4
        assert summary["fgsm/loss_penalty"] == pytest.approx(record.fgsm["2.0"].loss_penalty)  # 2/255 of [0, 255]
        assert (config["dataset"], config["task"], config["domain"], config["n_train"]) == (
            "digits", "digits-3v8", "natural", record.n_train,
        )  # fmt: skip
