"""A user's own data and model: batch formats, output formats, bounds, default layers, where the callbacks find data."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torchvision
from tests.helpers.tiny_lightning import LitClassifier, TinyResNetLike, digits_tensors, quiet_trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_dims.callbacks import AdversarialEvalCallback, ReprDimCallback
from lightning_dims.network.activations import default_layers, layer_list
from lightning_dims.network.attack import BoundsWarning, attack_batch, check_range_use, make_attacks, representable_bounds
from lightning_dims.network.batches import BatchFormat, LogitsModel

STANDARDISED = ((0 - 0.1307) / 0.3081, (1 - 0.1307) / 0.3081)  # MNIST's mean/std: float64 bounds


def test_batches_and_outputs_in_their_usual_places_or_where_told():
    x, y = torch.zeros(2, 1, 4, 4), torch.tensor([0, 1])
    found = BatchFormat()
    for batch in (x, (x, y), [x, y, "id"], {"image": x, "label": y}, {"pixel_values": x, "targets": y}):
        assert found.images(batch) is x
    assert found.labels({"img": x, "y": y}) is y and found.labels((x, y)) is y
    told = BatchFormat(inputs="scan", targets=lambda batch: batch["meta"]["cls"], logits=1)
    assert told.images({"scan": x}) is x and told.labels({"meta": {"cls": y}}) is y
    logits = torch.ones(2, 3)
    assert told.logits_of((None, logits)) is logits
    assert found.logits_of(logits) is logits and found.logits_of((logits, x)) is logits
    assert found.logits_of({"logits": logits, "features": x}) is logits
    with pytest.raises(TypeError, match=r"dict with keys \['scan', 'cls'\].*pass inputs="):
        found.images({"scan": x, "cls": y})
    with pytest.raises(TypeError, match="pass logits="):
        found.logits_of({"scores": logits})
    with pytest.raises(TypeError, match=r"shape \(2, 1, 4, 4\), not \(batch, classes\)"):
        found.logits_of(x)


def test_exact_standardised_bounds_pass_foolbox_and_tuple_outputs_are_attacked():
    lo, hi = STANDARDISED
    assert float(torch.tensor([lo]).clamp(lo, hi)) < lo  # float32 rounds the bound outward: foolbox's bare assert
    safe = representable_bounds(STANDARDISED, torch.float32)
    assert lo <= safe[0] == float(torch.tensor(safe[0])) and safe[1] <= hi and safe[1] - safe[0] > (hi - lo) * (1 - 1e-6)
    torch.manual_seed(0)
    network = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    model = LogitsModel(TupleOutput(network), BatchFormat()).eval()
    x = torch.full((4, 1, 4, 4), lo)
    x[:2] = hi  # every input exactly on a bound
    y = torch.tensor([0, 1, 0, 1])
    (totals,) = attack_batch(model, x, y, STANDARDISED, [0.1], make_attacks(None)["fgsm"], torch.device("cpu"))
    clean_loss = nn.functional.cross_entropy(network(x).double(), y, reduction="sum")
    assert float(totals[0]) == 4 and float(totals[1]) == pytest.approx(float(clean_loss)) and totals[2] >= totals[1]


class TupleOutput(nn.Module):
    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x):
        return self.network(x), x.flatten(1)


def test_bounds_far_wider_than_the_inputs_warn_naming_the_fix():
    with pytest.warns(BoundsWarning, match=r"0\.39% of the attack bounds \[0, 255\].*255 times.*bounds=\(0, 1\)"):
        check_range_use(0.0, 1.0, (0.0, 255.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_range_use(0.0, 1.0, (0.0, 1.0))
        check_range_use(*STANDARDISED, STANDARDISED)


def test_default_layers_are_found_under_any_attribute_and_a_bare_string_is_one_layer():
    holder = nn.Module()
    holder.backbone = torchvision.models.resnet18(num_classes=2)
    assert default_layers(holder) == ["backbone.layer4", "backbone.avgpool"]
    holder.backbone = nn.Module()  # torchvision VGG's layout, small
    holder.backbone.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    holder.backbone.classifier = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(), nn.Linear(8, 8), nn.ReLU())
    assert default_layers(holder) == ["backbone.classifier.3", "backbone.features:pool"]
    assert layer_list("layer4") == ["layer4"] and layer_list(["fc:input"]) == ["fc:input"] and layer_list(None) is None
    with pytest.raises(TypeError, match="a layer spec is a string"):
        layer_list([4])


def test_callbacks_find_plain_loaders_and_name_only_what_works_when_there_are_none():
    x, y = digits_tensors((3, 8))
    train = DataLoader(TensorDataset(x[:40], y[:40]), batch_size=20)
    val = DataLoader(TensorDataset(x[40:60], y[40:60]), batch_size=20)
    d_repr = ReprDimCallback(every_n_epochs=0, network="nothing")  # no such attribute: the module itself
    model = LitClassifier(TinyResNetLike(num_classes=2))
    quiet_trainer(max_epochs=1, callbacks=[d_repr]).fit(model, train, val)  # val loaders passed to fit
    assert d_repr.results_record_fields()["d_repr_details"]["layers"] == ["model.layer4", "model.avgpool"]
    attack = AdversarialEvalCallback(bounds=(0.0, 255.0))  # source test: no test loader anywhere
    trainer = quiet_trainer(max_epochs=1, callbacks=[attack])
    with pytest.raises(ValueError, match=r"no test dataloader.*dataloader=.*test_dataloader\(\)") as error:
        trainer.fit(LitClassifier(TinyResNetLike(num_classes=2)), train, val)
    assert "trainer.fit" not in str(error.value) and trainer.global_step == 0
    wrong = AdversarialEvalCallback(bounds=(0.0, 1.0), dataloader=val)  # 0..255 images, [0, 1] bounds
    with pytest.raises(ValueError, match="outside the attack bounds"):
        quiet_trainer(max_epochs=1, callbacks=[wrong]).fit(LitClassifier(TinyResNetLike(num_classes=2)), train)
    assert not math.isnan(d_repr.history[-1]["estimates"][0].value)


def test_the_setup_checks_leave_training_as_it_would_be_without_the_callbacks():
    x, y = digits_tensors((3, 8))
    train = DataLoader(TensorDataset(x[:60], y[:60]), batch_size=20, shuffle=True)
    val = DataLoader(TensorDataset(x[60:80], y[60:80]), batch_size=20)

    def trained_weights(callbacks):
        torch.manual_seed(0)
        model = LitClassifier(TinyResNetLike(num_classes=2))
        quiet_trainer(max_epochs=1, callbacks=callbacks).fit(model, train, val)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    checked = [ReprDimCallback(every_n_epochs=0), AdversarialEvalCallback(bounds=(0.0, 255.0), dataloader=val)]
    assert torch.equal(trained_weights(checked), trained_weights([]))


def test_a_standalone_trainer_test_is_attacked_on_the_loaders_it_was_given():
    x, y = digits_tensors((3, 8))
    test = DataLoader(TensorDataset(x[:30], y[:30]), batch_size=15)
    attack = AdversarialEvalCallback(bounds=(0.0, 255.0))
    model = LitClassifier(TinyResNetLike(num_classes=2))
    model.test_step = lambda batch, batch_idx: None
    quiet_trainer(callbacks=[attack]).test(model, test)
    fgsm = attack.results_record_fields()["fgsm"]["2.0"]
    assert fgsm["n"] == 30 and fgsm["attacked_loss"] >= fgsm["clean_loss"]
