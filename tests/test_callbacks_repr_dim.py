"""ReprDimCallback: known dimensions, degenerate embeddings, layer defaults, recording and sharding."""

from __future__ import annotations

import warnings
from collections import OrderedDict

import pytest
import torch
from tests.helpers.tiny_lightning import (
    LitClassifier,
    TensorDataModule,
    TinyResNetLike,
    digits_datamodule,
    quiet_trainer,
)
from torch import nn

from lightning_dims.callbacks import (
    ActivationRecorder,
    DegenerateRepresentationError,
    ReprDimCallback,
    ReprDimWarning,
    default_layers,
    estimate_layer_dimensions,
)
from lightning_dims.callbacks.sampling import fixed_subset, rank_shard
from lightning_dims.properties import DuplicateSamplesWarning, intrinsic_dimension


class DeadHalf(nn.Module):
    """ReLU units that are all dead for the samples with ``z_0 < 0``: those embed to exactly 0."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.linear = linear

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(z)) * (z[:, :1] > 0)


def latent_network(k: int, embed: nn.Module, width: int = 64) -> nn.Sequential:
    return nn.Sequential(OrderedDict(embed=embed, act=nn.Tanh(), fc=nn.Linear(width, 2)))


def latent_datamodule(k: int, n: int = 1200, seed: int = 0) -> TensorDataModule:
    """Gaussian k-dimensional inputs (labels: the sign of the first coordinate)."""
    z = torch.randn(n, k, generator=torch.Generator().manual_seed(seed))
    return TensorDataModule(z, (z[:, 0] > 0).long(), train=100, val=n - 200, test=100, batch_size=128)


def fit_and_measure(network: nn.Module, datamodule, **callback_options) -> ReprDimCallback:
    callback = ReprDimCallback(**callback_options)
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0, callbacks=[callback])
    trainer.fit(LitClassifier(network), datamodule=datamodule)
    return callback


def independent_d_repr(network: nn.Sequential, z: torch.Tensor, estimator: str) -> float:
    """The estimate on ``embed(z)`` computed here in float64 from the layer's weights (no hooks, no callback)."""
    linear = network.embed if isinstance(network.embed, nn.Linear) else network.embed.linear
    rows = z.double() @ linear.weight.detach().double().T + linear.bias.detach().double()
    if isinstance(network.embed, DeadHalf):
        rows = torch.relu(rows) * (z[:, :1] > 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateSamplesWarning)
        return float(intrinsic_dimension(rows, estimator))


# docs/callbacks.md: "d_repr of a linear map of k-dimensional Gaussian input recovers k
# (k = 4: TwoNN 4.01, MLE 3.83; k = 8: 7.99, 6.85)".
DOCUMENTED_LINEAR_MAP = {4: {"twonn": 4.01, "mle": 3.83}, 8: {"twonn": 7.99, "mle": 6.85}}


@pytest.mark.parametrize("k", [4, 8])
def test_linear_map_of_k_dim_input_recovers_k(k):
    torch.manual_seed(k)
    network = latent_network(k, nn.Linear(k, 64))  # embed = W z + b: a k-dim affine subspace of R^64
    datamodule = latent_datamodule(k)
    callback = fit_and_measure(network, datamodule, layers=["embed"], estimators=["twonn", "mle"])
    d_repr = callback.results_record_fields()["d_repr"]["embed"]
    z_val = datamodule.datasets["val"].tensors[0]  # all 1000 validation samples (max_samples=1000)
    for estimator, documented in DOCUMENTED_LINEAR_MAP[k].items():
        assert d_repr[estimator] == pytest.approx(independent_d_repr(network, z_val, estimator), rel=1e-4)
        assert d_repr[estimator] == pytest.approx(documented, abs=0.006), estimator
    details = callback.results_record_fields()["d_repr_details"]
    assert details["estimates"][0]["n_samples"] == 1000 and details["estimates"][0]["feature_dim"] == 64


def isometric_network(k: int, width: int = 64) -> nn.Sequential:
    """``embed(z) = Q z + b`` with orthonormal columns Q, frozen: distances (hence TwoNN) equal the input's."""
    embed = nn.Linear(k, width)
    q, _ = torch.linalg.qr(torch.randn(width, k, generator=torch.Generator().manual_seed(k)))
    embed.weight.data.copy_(q)
    embed.requires_grad_(False)
    return latent_network(k, embed, width)


def two_dimension_datamodule(k: int, train_dim: int, val_dim: int, n: int = 400) -> TensorDataModule:
    """Same-size train and val sets whose inputs span ``train_dim`` and ``val_dim`` of the k coordinates."""
    generator = torch.Generator().manual_seed(1)
    datamodule = latent_datamodule(k, n=3 * n)
    for split, dim in (("train", train_dim), ("val", val_dim), ("test", val_dim)):
        z = torch.zeros(n, k)
        z[:, :dim] = torch.randn(n, dim, generator=generator)
        datamodule.datasets[split] = torch.utils.data.TensorDataset(z, (z[:, 0] > 0).long())
    return datamodule


@pytest.mark.parametrize("source", ["val", "train"])
def test_d_repr_is_measured_on_the_source_split(source):
    datamodule = two_dimension_datamodule(k=8, train_dim=2, val_dim=6)  # TwoNN about 2 on train, 6 on val
    network = isometric_network(8)
    callback = fit_and_measure(network, datamodule, layers=["embed"], source=source, max_samples=400, every_n_epochs=0)
    z = datamodule.datasets[source].tensors[0]
    measured = callback.results_record_fields()["d_repr"]["embed"]["twonn"]
    assert measured == pytest.approx(float(intrinsic_dimension(z, "twonn")), rel=1e-4)  # exact up to float32
    other = "train" if source == "val" else "val"
    assert abs(measured - float(intrinsic_dimension(datamodule.datasets[other].tensors[0], "twonn"))) > 2


def test_dead_relu_duplicates_give_a_finite_value_with_a_warning():
    torch.manual_seed(0)
    network = latent_network(5, DeadHalf(nn.Linear(5, 64)))
    datamodule = latent_datamodule(5)
    with pytest.warns(DuplicateSamplesWarning, match=r"d_repr/embed/twonn: dropped \d+ exact duplicate"):
        callback = fit_and_measure(network, datamodule, layers=["embed"])
    (estimate,) = callback.results_record_fields()["d_repr_details"]["estimates"]
    z_val = datamodule.datasets["val"].tensors[0]
    assert estimate["n_duplicates"] == int((z_val[:, 0] <= 0).sum()) - 1  # all those embed to the same 0
    assert estimate["value"] == pytest.approx(independent_d_repr(network, z_val, "twonn"), rel=1e-4)
    assert estimate["value"] == pytest.approx(5.3, abs=0.06)  # docs/callbacks.md: "a half-dead ReLU layer gives 5.3 for k = 5"


def dead_network() -> nn.Sequential:
    linear = nn.Linear(5, 64)
    nn.init.constant_(linear.bias, -1e3)  # every unit dead for every input
    return nn.Sequential(OrderedDict(embed=linear, relu=nn.ReLU(), fc=nn.Linear(64, 2)))


def test_fully_dead_layer_is_a_clear_error_when_asked():
    with pytest.raises(DegenerateRepresentationError, match="d_repr/relu/twonn is undefined.*dead ReLUs"):
        fit_and_measure(dead_network(), latent_datamodule(5), layers=["relu"], on_degenerate="raise")


def test_fully_dead_layer_warns_and_records_none_never_zero_or_nan():
    network, datamodule = dead_network(), latent_datamodule(5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        callback = fit_and_measure(network, datamodule, layers=["relu", "embed"])
    assert any(issubclass(w.category, ReprDimWarning) and "d_repr/relu/twonn" in str(w.message) for w in caught)
    d_repr = callback.results_record_fields()["d_repr"]
    assert d_repr["relu"]["twonn"] is None  # explicitly undefined, with the reason in the details
    z_val = datamodule.datasets["val"].tensors[0]
    assert d_repr["embed"]["twonn"] == pytest.approx(independent_d_repr(network, z_val, "twonn"), rel=1e-4)  # still measured


def test_estimate_layer_dimensions_rejects_bad_policy():
    with pytest.raises(ValueError, match="on_degenerate"):
        estimate_layer_dimensions({"x": torch.randn(50, 3)}, on_degenerate="ignore")


def test_default_layers_per_architecture():
    import timm
    import torchvision

    assert default_layers(torchvision.models.resnet18(num_classes=2)) == ["layer4", "avgpool"]
    assert default_layers(TinyResNetLike()) == ["layer4", "avgpool"]
    vgg = torchvision.models.vgg11(num_classes=2)
    assert default_layers(vgg) == ["classifier.3", "features:pool"]
    assert default_layers(timm.create_model("resnet10t", num_classes=2)) == ["fc:input"]
    assert default_layers(nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))) == ["2:input"]
    with pytest.raises(ValueError, match="pass layers="):
        default_layers(nn.Sequential(nn.Conv2d(1, 2, 3)))
    with ActivationRecorder(vgg, default_layers(vgg), max_rows=10) as recorder:
        vgg.eval()(torch.rand(2, 3, 32, 32))
    shapes = {layer: tuple(rows.shape) for layer, rows in recorder.activations().items()}
    assert shapes == {"classifier.3": (2, 4096), "features:pool": (2, 512)}


def test_recorder_caps_rows_and_removes_its_hooks():
    network = TinyResNetLike()
    recorder = ActivationRecorder(network, ["layer4", "avgpool", "fc:input"], max_rows=5)
    with recorder:
        network(torch.rand(3, 1, 8, 8) * 255)
        network(torch.rand(4, 1, 8, 8) * 255)
    network(torch.rand(4, 1, 8, 8) * 255)  # after exit: not recorded
    rows = recorder.activations()
    assert {layer: tuple(r.shape) for layer, r in rows.items()} == {
        "layer4": (5, 32 * 4 * 4),
        "avgpool": (5, 32 * 2 * 2),
        "fc:input": (5, 32 * 4),
    }
    assert torch.equal(rows["avgpool"], rows["fc:input"])  # the flattened pool output is the fc input
    assert not any(module._forward_hooks or module._forward_pre_hooks for module in network.modules())
    with pytest.raises(ValueError, match="no module 'layer5'.*layer4"):
        ActivationRecorder(network, ["layer5"], max_rows=5)
    with pytest.raises(ValueError, match="bad layer spec"):
        ActivationRecorder(network, ["layer4:max"], max_rows=5)


def test_wrong_layer_name_fails_before_training():
    callback = ReprDimCallback(layers=["layer9"])
    trainer = quiet_trainer(max_epochs=1, callbacks=[callback])
    with pytest.raises(ValueError, match="no module 'layer9'"):
        trainer.fit(LitClassifier(), datamodule=digits_datamodule(100, 50, 50))
    assert trainer.global_step == 0


def test_subset_is_fixed_and_shards_cover_it_once():
    subset = fixed_subset(1000, 300, seed=3)
    assert torch.equal(subset, fixed_subset(1000, 300, seed=3)) and len(subset) == 300
    assert len(set(subset.tolist())) == 300 and torch.equal(subset, subset.sort().values)
    assert torch.equal(fixed_subset(20, None, seed=0), torch.arange(20))
    shards = [rank_shard(subset, rank, 3) for rank in range(3)]
    assert sorted(torch.cat(shards).tolist()) == subset.tolist()
    with pytest.raises(ValueError, match="fewer devices"):
        rank_shard(torch.arange(2), 0, 3)


def test_every_n_epochs_and_final_measurement_on_digits():
    torch.manual_seed(0)
    callback = ReprDimCallback(every_n_epochs=2, max_samples=200, estimators=["twonn", "mle"])
    trainer = quiet_trainer(max_epochs=3, limit_val_batches=0, callbacks=[callback])
    model, datamodule = LitClassifier(), digits_datamodule(300, 200, 10)
    trainer.fit(model, datamodule=datamodule)
    assert [entry["epoch"] for entry in callback.history] == [1, 3]  # after epoch index 1, then at the end
    assert model.training  # mode restored after measuring
    record = callback.results_record_fields()
    network = model.model.eval()
    with torch.no_grad():  # the final weights' activations of all 200 validation images, by hand
        hidden = network.layer4(network.stem(datamodule.datasets["val"].tensors[0] / 255.0))
    by_hand = {"layer4": hidden.flatten(1), "avgpool": network.avgpool(hidden).flatten(1)}
    assert set(record["d_repr"]) == set(by_hand)
    for layer, values in record["d_repr"].items():
        for estimator, value in values.items():
            assert value == pytest.approx(float(intrinsic_dimension(by_hand[layer], estimator)), rel=1e-4), (layer, estimator)


def test_module_feature_layer_joins_the_defaults():
    model = LitClassifier()
    model.feature_layer = "stem"  # as ImageClassifier names the paper's layer (timm: last stage)
    callback = ReprDimCallback()
    callback.setup(quiet_trainer(), model, "validate")  # layers only: no data needed
    assert callback._layers == ["stem", "layer4", "avgpool"]
    model.feature_layer = "layer4"
    callback.setup(quiet_trainer(), model, "validate")  # layers only: no data needed
    assert callback._layers == ["layer4", "avgpool"]
    explicit = ReprDimCallback(layers=["fc:input"])
    explicit.setup(quiet_trainer(), model, "validate")  # layers only: no data needed
    assert explicit._layers == ["fc:input"]


def test_empty_validation_split_fails_before_training():
    trainer = quiet_trainer(max_epochs=1, callbacks=[ReprDimCallback()])
    with pytest.raises(ValueError, match="the val set has 0.*source='train'"):
        trainer.fit(LitClassifier(), datamodule=digits_datamodule(100, 0, 50))
    assert trainer.global_step == 0
    on_train = ReprDimCallback(source="train", max_samples=50)
    quiet_trainer(max_epochs=1, limit_train_batches=1, callbacks=[on_train]).fit(
        LitClassifier(), datamodule=digits_datamodule(100, 0, 50)
    )
    assert on_train.results_record_fields()["d_repr_details"]["source"] == "train"
    assert on_train.results_record_fields()["d_repr_details"]["estimates"][0]["n_samples"] == 50


@pytest.mark.parametrize(
    "arch, layers",
    [("resnet18", ["layer4", "avgpool"]), ("convnext_atto", ["stages.3", "head.fc:input"])],
)
def test_image_classifier_defaults_record_the_paper_layer_and_the_pooled_vector(arch, layers):
    from lightning_dims.models import ImageClassifier

    model = ImageClassifier(arch=arch, in_chans=1, num_classes=2).eval()
    callback = ReprDimCallback()
    callback.setup(quiet_trainer(), model, "test")
    assert callback._layers == layers
    with ActivationRecorder(model.model, layers, max_rows=4) as recorder, torch.no_grad():
        model(torch.rand(3, 1, 64, 64) * 255)
    assert [rows.shape[0] for rows in recorder.activations().values()] == [3, 3]


def test_too_few_samples_is_told_apart_from_collapsed_embeddings():
    with pytest.warns(ReprDimWarning, match="too few samples.*raise max_samples"):
        (estimate,) = estimate_layer_dimensions({"x": torch.randn(15, 4)}, ["mle"], {"mle": {"k": 20}})
    assert estimate.value is None and estimate.n_duplicates == 0 and "k + 1 = 21 samples" in estimate.error
    collapsed = torch.zeros(30, 4)
    collapsed[0, 0] = 1.0
    with pytest.raises(DegenerateRepresentationError, match="2 distinct of 30.*all identical"):
        estimate_layer_dimensions({"x": collapsed}, ["twonn"], on_degenerate="raise")


def test_history_survives_a_checkpoint_resume(tmp_path):
    torch.manual_seed(0)
    datamodule = digits_datamodule(200, 100, 10)
    first = ReprDimCallback(max_samples=100)
    trainer = quiet_trainer(max_epochs=1, limit_val_batches=0, callbacks=[first], default_root_dir=tmp_path)
    trainer.fit(LitClassifier(), datamodule=datamodule)
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    resumed = ReprDimCallback(max_samples=100)
    trainer = quiet_trainer(max_epochs=2, limit_val_batches=0, callbacks=[resumed], default_root_dir=tmp_path)
    trainer.fit(LitClassifier(), datamodule=datamodule, ckpt_path=tmp_path / "last.ckpt", weights_only=True)
    assert [entry["epoch"] for entry in resumed.history] == [0, 1]
    assert resumed.history[0]["estimates"] == first.history[0]["estimates"]
