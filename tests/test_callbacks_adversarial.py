"""AdversarialEvalCallback: foolbox FGSM against a hand-written reference, metrics, Lightning glue."""

from __future__ import annotations

import math
import os
from types import SimpleNamespace
from typing import get_args

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from torch import nn
from tests.helpers.tiny_lightning import (
    LitClassifier,
    TinyResNetLike,
    digits_datamodule,
    digits_tensors,
    quiet_trainer,
)

from lightning_dims.callbacks import AdversarialEvalCallback, robustness_metrics
from lightning_dims.callbacks.adversarial import (
    attack_batch,
    check_bounds,
    eps_key,
    import_foolbox,
    intensity_bounds,
    make_attacks,
    parse_eps,
)
from lightning_dims.data.spec import INTENSITY_SCALINGS, PreprocessingSpec, preprocess

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


def reference_fgsm(model, x, y, eps, lo, hi):
    """The paper's formula, written out: x_adv = clip(x + eps * sign(grad_x CE(f(x), y)), lo, hi)."""
    x = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (gradient,) = torch.autograd.grad(loss, x)
    return torch.clamp(x.detach() + eps * gradient.sign(), lo, hi)


@pytest.mark.parametrize("scale, eps", [(255.0, 2.0), (255.0, 9.5), (1.0, 2 / 255)])
def test_reference_fgsm_equals_foolbox_exactly(scale, eps):
    torch.manual_seed(0)
    x, y = digits_tensors()
    x, y = x[:200] * (scale / 255.0), y[:200]
    model = TinyResNetLike().eval()
    model.stem[0].weight.data *= 255.0 / scale  # same function of the image in both scales
    fb = import_foolbox()
    fmodel = fb.PyTorchModel(model, bounds=(0.0, scale), device=torch.device("cpu"))
    _, (foolbox_adv,), _ = fb.attacks.LinfFastGradientAttack()(fmodel, x, y, epsilons=[eps])
    reference = reference_fgsm(model, x, y, eps, 0.0, scale)
    assert torch.equal(foolbox_adv, reference)
    moved = (reference - x).abs()
    assert float(moved.max()) == pytest.approx(eps, rel=1e-6) and float((moved > 0).float().mean()) > 0.5  # the attack really moved pixels


def test_attack_batch_metrics_equal_the_reference_attack():
    torch.manual_seed(1)
    x, y = digits_tensors()
    x, y = x[:128], y[:128]
    model = TinyResNetLike().eval()
    eps_abs = [2.0, 16.0]
    totals = attack_batch(model, x, y, (0.0, 255.0), eps_abs, make_attacks(None)["fgsm"], torch.device("cpu"))
    for eps, total in zip(eps_abs, totals):
        adv = reference_fgsm(model, x, y, eps, 0.0, 255.0)
        with torch.no_grad():
            clean, attacked = model(x), model(adv)
        metrics = robustness_metrics(total)
        assert metrics["n"] == 128
        assert metrics["clean_loss"] == pytest.approx(float(F.cross_entropy(clean.double(), y)), rel=1e-12)
        assert metrics["attacked_loss"] == pytest.approx(float(F.cross_entropy(attacked.double(), y)), rel=1e-12)
        assert metrics["attacked_acc"] == float((attacked.argmax(1) == y).double().mean())
        assert metrics["loss_penalty"] == pytest.approx(metrics["attacked_loss"] - metrics["clean_loss"], abs=1e-15)


def test_robustness_metrics_by_hand():
    totals = torch.tensor([4.0, 2.0, 6.0, 3.0, 1.0], dtype=torch.float64)  # n, loss sums, correct counts
    metrics = robustness_metrics(totals)
    assert metrics == {
        "clean_loss": 0.5,
        "attacked_loss": 1.5,
        "clean_acc": 0.75,
        "attacked_acc": 0.25,
        "loss_penalty": 1.0,
        "acc_penalty": 0.5,
        "n": 4,
    }
    with pytest.raises(ValueError, match="empty"):
        robustness_metrics(torch.zeros(5, dtype=torch.float64))


def test_eps_parsing_keys_and_bounds():
    assert parse_eps("2/255") == 2 / 255 and parse_eps(" 8 / 255 ") == 8 / 255 and parse_eps(0.5) == 0.5
    assert eps_key(2 / 255 * 255) == "2.0" and eps_key(2 / 255) == "0.0078431372549"
    for bad in ("two", "2/0", 0, 2.0, "-1/255"):
        with pytest.raises(ValueError, match="eps"):
            parse_eps(bad)
    with pytest.raises(ValueError, match="not distinct"):
        AdversarialEvalCallback(eps=[2 / 255, "2/255"])
    assert intensity_bounds(digits_datamodule(10, 10, 10)) == (0.0, 255.0)
    with pytest.raises(ValueError, match="pass bounds"):
        intensity_bounds(object())
    x = torch.tensor([0.0, 255.00003])
    assert float(check_bounds(x, (0.0, 255.0)).max()) == 255.0  # rounding excess is clamped
    with pytest.raises(ValueError, match=r"bounds=\(lo, hi\)"):
        check_bounds(torch.tensor([-0.5, 0.5]), (0.0, 255.0))  # e.g. mean/std normalised inputs


@pytest.fixture(scope="module")
def trained():
    """The tiny CNN trained 10 epochs on 600 digits, with the attack callback run at fit end."""
    torch.manual_seed(0)
    callback = AdversarialEvalCallback(eps=["2/255", "8/255", "32/255"])
    datamodule = digits_datamodule()
    model = LitClassifier()
    trainer = quiet_trainer(max_epochs=10, callbacks=[callback], limit_val_batches=0)
    trainer.fit(model, datamodule=datamodule)
    return trainer, model, callback


@pytest.mark.parametrize("intensity", [name for name in get_args(PreprocessingSpec.model_fields["intensity"].annotation) if name != "raw"])
def test_fgsm_bounds_are_the_range_the_spec_scales_images_to(intensity):
    # one table (data/spec.py): a scaling added to the spec gets its FGSM bounds, and they hold its images
    spec = PreprocessingSpec(size=8, intensity=intensity)
    images = preprocess(torch.rand(6, 1, 12, 12) * 7.0, spec)
    lo, hi = intensity_bounds(SimpleNamespace(spec=spec))
    assert (lo, hi) == (0.0, INTENSITY_SCALINGS[intensity])
    assert float(images.min()) >= lo and torch.equal(images.flatten(1).amax(1), torch.full((6,), hi))
    assert torch.equal(check_bounds(images, (lo, hi)), images)


def test_trained_model_attack_lowers_accuracy_and_raises_loss(trained):
    _, model, callback = trained
    fgsm = callback.results["fgsm"]
    assert set(fgsm) == {"2.0", "8.0", "32.0"}  # absolute eps, intensity units of max255
    for key, metrics in fgsm.items():
        assert metrics.n == 300 and metrics.eps == float(key) == metrics.eps_fraction * 255
        assert metrics.attacked_acc <= metrics.clean_acc, key
        assert metrics.loss_penalty >= 0.0, key
        assert metrics.acc_penalty == pytest.approx(metrics.clean_acc - metrics.attacked_acc)
    assert fgsm["2.0"].clean_acc > 0.85  # the model did learn
    penalties = [fgsm[key].loss_penalty for key in ("2.0", "8.0", "32.0")]
    assert penalties[0] > 0 and penalties == sorted(penalties)  # stronger attacks hurt more
    assert fgsm["32.0"].acc_penalty > 0.1
    assert model.training  # the callback restored the mode it found
    record = callback.results_record_fields()
    assert record["adversarial"]["bounds"] == [0.0, 255.0]
    assert record["fgsm"] == {key: metrics.model_dump() for key, metrics in fgsm.items()}


def test_evaluate_inside_inference_mode_gives_the_same_numbers(trained):
    trainer, model, callback = trained
    with torch.inference_mode():
        again = callback.evaluate(trainer, model)
    assert again == callback.results


def test_pgd_is_at_least_as_strong_as_fgsm(trained):
    trainer, model, _ = trained
    callback = AdversarialEvalCallback(eps=["8/255"], pgd=True, pgd_steps=10, pgd_rel_stepsize=0.25, max_samples=100)
    results = callback.evaluate(trainer, model)
    assert set(results) == {"fgsm", "pgd"} and results["pgd"]["8.0"].n == 100
    assert results["pgd"]["8.0"].attacked_loss >= results["fgsm"]["8.0"].attacked_loss
    assert results["pgd"]["8.0"].clean_loss == results["fgsm"]["8.0"].clean_loss
    assert callback.evaluate(trainer, model) == results  # seeded random start: reproducible
    assert math.isfinite(results["pgd"]["8.0"].loss_penalty)


def test_a_config_that_cannot_attack_fails_before_training():
    datamodule = digits_datamodule(100, 50, 50)
    datamodule.spec = None  # no intensity scaling to read the bounds from
    trainer = quiet_trainer(max_epochs=1, callbacks=[AdversarialEvalCallback()])
    with pytest.raises(ValueError, match="pass bounds"):
        trainer.fit(LitClassifier(), datamodule=datamodule)
    assert trainer.global_step == 0
    empty_test = digits_datamodule(100, 50, 0)
    trainer = quiet_trainer(max_epochs=1, callbacks=[AdversarialEvalCallback()])
    with pytest.raises(ValueError, match="test set has 0 samples"):
        trainer.fit(LitClassifier(), datamodule=empty_test)
    assert trainer.global_step == 0


class BatchNormDropoutNet(nn.Module):
    """A CNN whose train and eval modes differ: BatchNorm (batch vs running statistics) and dropout."""

    def __init__(self, num_classes: int = 10, width: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.Dropout(0.5),
            nn.Conv2d(width, width, 3, padding=1, stride=2), nn.BatchNorm2d(width), nn.ReLU(),
        )  # fmt: skip
        self.fc = nn.Linear(width * 16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(x / 255.0), 1))


class StateAtFitEnd(Callback):
    """Remembers the module's mode and a copy of its state (weights and BatchNorm buffers) at fit end."""

    def on_fit_end(self, trainer, pl_module):
        self.training = pl_module.training
        self.state = {name: value.clone() for name, value in pl_module.state_dict().items()}


def reference_attack_metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> dict[str, float]:
    """FGSM metrics of ``model`` in eval mode on (x, y), from the hand-written attack."""
    model.eval()
    adv = reference_fgsm(model, x, y, eps, 0.0, 255.0)
    with torch.no_grad():
        clean, attacked = model(x).double(), model(adv).double()
    return {
        "clean_loss": float(F.cross_entropy(clean, y)),
        "attacked_loss": float(F.cross_entropy(attacked, y)),
        "clean_acc": float((clean.argmax(1) == y).double().mean()),
        "attacked_acc": float((attacked.argmax(1) == y).double().mean()),
    }


def test_attack_runs_in_eval_mode_and_leaves_batchnorm_statistics_alone():
    torch.manual_seed(0)
    snapshot, callback = StateAtFitEnd(), AdversarialEvalCallback(eps=["8/255"])
    datamodule = digits_datamodule(400, 100, 200)
    model = LitClassifier(BatchNormDropoutNet())
    quiet_trainer(max_epochs=3, limit_val_batches=0, callbacks=[snapshot, callback]).fit(model, datamodule=datamodule)
    assert snapshot.training  # Lightning hands the module over in train mode: the callback must switch
    after = model.state_dict()
    assert all(torch.equal(after[name], value) for name, value in snapshot.state.items())  # running stats untouched
    assert model.training  # and the mode it found is restored
    x, y = datamodule.datasets["test"].tensors
    expected = reference_attack_metrics(model, x, y, 8.0)
    got = callback.results["fgsm"]["8.0"]
    assert got["n"] == 200
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-5, abs=1e-9), name
    model.train()
    with torch.no_grad():  # the two modes really differ on this network
        assert not torch.allclose(model(x), model.eval()(x))
