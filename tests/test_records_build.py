"""The records layer without the CLI: a record built from a plain Trainer, ImageClassifier and
DimsDataModule, and the run lifecycle writing the right record on every exit path."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from tests.helpers.tiny_lightning import quiet_trainer

from lightning_dims.callbacks import DataPropertiesCallback
from lightning_dims.data import DimsDataModule
from lightning_dims.models import ImageClassifier
from lightning_dims.records import read_record, record_path
from lightning_dims.records.build import Evaluations, RunFacts, eval_metrics, run_record
from lightning_dims.runs.claims import Claim
from lightning_dims.runs.folder import CLAIM_NAME, RunFolder
from lightning_dims.runs.lifecycle import RunSession, recorded_run


def digits_run(callbacks=()):
    torch.manual_seed(0)
    datamodule = DimsDataModule(name="digits", classes=[3, 8], train_size=60, val_size=20, test_size=20, size=8, batch_size=20)
    datamodule.setup("fit")
    model = ImageClassifier(arch="resnet18", in_chans=1, num_classes=2, lr=1e-3)
    trainer = quiet_trainer(max_epochs=1, callbacks=list(callbacks))
    return trainer, model, datamodule


def test_a_record_from_plain_lightning_objects():
    trainer, model, datamodule = digits_run([DataPropertiesCallback(m=60, k=10)])
    trainer.fit(model, datamodule=datamodule)
    trainer.test(model, datamodule=datamodule, verbose=False)
    facts = RunFacts(run_id="plain", seed=0, config={"model.arch": "resnet18"}, config_hash="abc", preset="none")
    attempts = [{"attempt": 1, "status": "finished", "started_at": "2026-01-01T00:00:00Z", "wall_time_s": 2.5}]
    record = run_record(
        facts,
        {"d_data": 4.5},
        trainer=trainer,
        model=model,
        datamodule=datamodule,
        status="finished",
        error=None,
        evaluations=Evaluations(test=eval_metrics(trainer.callback_metrics, "test")),
        attempts=attempts,
    )
    assert (record.run_id, record.dataset, record.domain, record.arch, record.classes) == ("plain", "digits", "natural", "resnet18", [3, 8])
    assert (record.n_train, record.n_val, record.n_test, record.epochs, record.global_step) == (60, 20, 20, 1, 3)
    assert record.test.loss == pytest.approx(float(trainer.callback_metrics["test/loss"]))
    assert record.preprocessing["key"] == "8px-1ch-max255" and record.config_hash == "abc"
    assert record.hparams["lr"] == 1e-3 and record.hparams["batch_size"] == 20
    assert record.wall_time_s == 2.5 and record.started_at == "2026-01-01T00:00:00Z" and record.d_data == 4.5


class Boom(Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        raise RuntimeError("boom at epoch end")


@pytest.mark.parametrize("failure", [None, RuntimeError, KeyboardInterrupt])
def test_the_lifecycle_writes_one_record_on_every_exit_path(tmp_path, failure):
    trainer, model, datamodule = digits_run([DataPropertiesCallback(m=60, k=10)] + ([Boom()] if failure is RuntimeError else []))
    claim = Claim.acquire(tmp_path / CLAIM_NAME)
    session = RunSession(
        facts=RunFacts(run_id="life", seed=0, config={"a": 1}, config_hash="h"),
        folder=RunFolder(tmp_path, "life", record_path(tmp_path, "life")),
        trainer=trainer,
        model=model,
        datamodule=datamodule,
        claim=claim,
    )
    expected = {None: "finished", RuntimeError: "failed", KeyboardInterrupt: "interrupted"}[failure]
    try:
        with recorded_run(session) as outcome:
            trainer.fit(model, datamodule=datamodule)
            if failure is KeyboardInterrupt:
                raise KeyboardInterrupt
            outcome.evaluations.val = eval_metrics(trainer.callback_metrics, "val")
    except (RuntimeError, KeyboardInterrupt) as caught:
        assert failure is not None and isinstance(caught, failure)
    record = read_record(record_path(tmp_path, "life"))
    assert record.status == expected
    assert record.label_sharpness is not None  # the callbacks' measurements are kept whatever happened
    assert [a.status for a in record.attempts] == [expected]
    assert (record.error is None) == (failure is None) and (failure is not RuntimeError or "boom" in record.error)
    assert not (tmp_path / CLAIM_NAME).exists()  # released on every path
