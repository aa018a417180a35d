"""All three callbacks under 2-process CPU DDP (gloo) on digits; run by test_callbacks_run.py.

Usage: ``python tests/helpers/ddp_callbacks_run.py OUT_DIR``. Lightning re-launches this script for rank 1.
Each rank writes ``OUT_DIR/rank<r>.json`` with its callbacks' record fields and, computed in that
process alone from the same final weights, single-process references for d_repr and FGSM.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import torch  # noqa: E402

from lightning_dims.callbacks import (  # noqa: E402
    ActivationRecorder,
    AdversarialEvalCallback,
    DataPropertiesCallback,
    ReprDimCallback,
    estimate_layer_dimensions,
    robustness_metrics,
)
from lightning_dims.callbacks.adversarial import attack_batch, eps_key, make_attacks  # noqa: E402
from lightning_dims.callbacks.sampling import fixed_subset, subset_loader  # noqa: E402
from lightning_dims.data import DimsDataModule  # noqa: E402
from tests.helpers.tiny_lightning import LitClassifier, TinyResNetLike, quiet_trainer  # noqa: E402

REPR_SAMPLES = 149  # odd: the two ranks' shares differ in size
EPS = [2 / 255, 8 / 255]


def single_process_references(model: LitClassifier, datamodule: DimsDataModule) -> dict:
    """d_repr and FGSM of ``model`` computed in this process alone, without sharding or collectives."""
    model.eval()
    val = datamodule.val_dataloader()
    recorder = ActivationRecorder(model.model, ["layer4", "avgpool"], max_rows=REPR_SAMPLES)
    with torch.no_grad(), recorder:
        for x, _ in subset_loader(val, fixed_subset(len(val.dataset), REPR_SAMPLES, seed=0)):
            model(x)
    estimates = estimate_layer_dimensions(recorder.activations(), ["twonn", "mle"])
    totals = torch.zeros(len(EPS), 5, dtype=torch.float64)
    attack = make_attacks(None)["fgsm"]
    for x, y in datamodule.test_dataloader():
        totals += torch.stack(attack_batch(model, x, y, (0.0, 255.0), [e * 255 for e in EPS], attack, torch.device("cpu")))
    return {
        "d_repr": {f"{e.layer}/{e.estimator}": e.value for e in estimates},
        "fgsm": {eps_key(e * 255): robustness_metrics(row) for e, row in zip(EPS, totals)},
    }


def main(out: Path) -> None:
    torch.manual_seed(0)
    datamodule = DimsDataModule(name="digits", train_size=300, val_size=150, test_size=151, size=16, batch_size=50)
    callbacks = [
        DataPropertiesCallback(m=300),
        ReprDimCallback(max_samples=REPR_SAMPLES, estimators=["twonn", "mle"]),
        AdversarialEvalCallback(eps=EPS),
    ]
    trainer = quiet_trainer(devices=2, strategy="ddp", max_epochs=2, callbacks=callbacks)
    model = LitClassifier(TinyResNetLike(num_classes=10))
    trainer.fit(model, datamodule=datamodule)
    report = {
        "world_size": trainer.world_size,
        "fields": {type(c).__name__: c.results_record_fields() for c in callbacks},
        "reference": single_process_references(model, datamodule),
        "n_test": len(datamodule.test_dataloader().dataset),
    }
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(report, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
