"""Architecture registry, paper presets and the LightningModule, on plain tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lightning_dims.models import (
    ImageClassifier,
    arch_spec,
    create_model,
    feature_layer,
    list_models,
    mixed_precision,
    paper_batch_size,
    paper_defaults,
    paper_learning_rate,
    register_model,
    task_probabilities,
)

PAPER_ARCHS = ["resnet18", "resnet34", "resnet50", "vgg13", "vgg16", "vgg19"]
"""What the paper trained; the registry must hold them (model tests run over the registry itself)."""
TIMM_ARCH = "resnet10t"  # small timm model, not in the paper registry


def first_conv(model: torch.nn.Module) -> torch.nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))


def last_linear(model: torch.nn.Module) -> torch.nn.Linear:
    return [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]


def test_registry_lists_the_paper_architectures():
    assert set(PAPER_ARCHS) <= set(list_models())
    assert {arch_spec(a).family for a in PAPER_ARCHS} == {"resnet", "vgg"}
    assert arch_spec(TIMM_ARCH).family == "timm"
    assert arch_spec("timm/resnet18").family == "timm"  # the prefix forces timm over torchvision


@pytest.mark.parametrize("arch", list_models() + [TIMM_ARCH])
def test_forward_backward_on_1_and_3_channels_with_2_and_1000_logits(arch):
    torch.manual_seed(0)
    # The stem (channels) and the head (logits) are adapted independently: two builds cover both of each.
    for in_chans, num_classes in ((1, 2), (3, 1000)):
        model = create_model(arch, in_chans=in_chans, num_classes=num_classes)
        assert first_conv(model).in_channels == in_chans
        assert last_linear(model).out_features == num_classes
        x = torch.randn(2, in_chans, 32, 32)
        logits = model(x)
        assert logits.shape == (2, num_classes)
        F.cross_entropy(logits, torch.tensor([0, 1])).backward()
        grad = first_conv(model).weight.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
        del model


def test_feature_layers_are_the_papers_penultimate_layers():
    resnet, vgg = create_model("resnet18"), create_model("vgg13")
    assert feature_layer("resnet18") == "layer4" and feature_layer("vgg16") == "classifier.3"
    assert resnet.get_submodule("layer4") is not None
    assert vgg.get_submodule("classifier.3").out_features == 4096  # VGG's second fully connected layer
    timm_model = create_model(TIMM_ARCH)
    assert timm_model.get_submodule(feature_layer(TIMM_ARCH, timm_model)) is not None


def test_unknown_architecture_names_the_known_ones():
    with pytest.raises(ValueError, match="resnet18.*timm"):
        create_model("resnet19")


def test_pretrained_weights_are_summed_over_rgb_for_one_channel(monkeypatch):
    import torchvision

    donor = torchvision.models.resnet18(weights=None)
    asked = []

    def fake_get_model(name, weights=None):  # stands in for the download
        asked.append((name, weights))
        return donor

    monkeypatch.setattr(torchvision.models, "get_model", fake_get_model)
    rgb_kernels = donor.conv1.weight.detach().clone()
    head = donor.fc
    model = create_model("resnet18", in_chans=1, num_classes=1000, pretrained=True)
    assert asked == [("resnet18", "DEFAULT")]
    assert torch.allclose(model.conv1.weight, rgb_kernels.sum(dim=1, keepdim=True))
    assert model.fc is head  # the parity head keeps the pretrained ImageNet classifier
    gray = torch.rand(1, 1, 32, 32)
    model.eval()
    with torch.no_grad():  # same response to a gray image as the RGB net to its replication
        expected = torchvision.models.resnet18(weights=None)
        expected.load_state_dict({**model.state_dict(), "conv1.weight": rgb_kernels})
        expected.eval()
        assert torch.allclose(model(gray), expected(gray.expand(-1, 3, -1, -1)), atol=1e-4)


def test_register_model_adds_a_builder_and_refuses_duplicates():
    @register_model("tiny_test_net", family="custom", feature_layer="0")
    def tiny(in_chans, num_classes, pretrained):
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(num_classes))

    assert create_model("tiny_test_net", 1, 3)(torch.randn(2, 1, 4, 4)).shape == (2, 3)
    with pytest.raises(ValueError, match="already registered"):
        register_model("tiny_test_net", family="custom", feature_layer=None)(tiny)


def test_paper_presets():
    assert paper_learning_rate("resnet50") == 1e-3
    assert paper_learning_rate("vgg19", "mnist") == 1e-4
    assert paper_learning_rate("vgg16", "svhn") == 1e-6  # the paper's VGG-on-SVHN exception
    assert paper_learning_rate("resnet18", "svhn") == 1e-3
    assert [paper_batch_size(a) for a in PAPER_ARCHS] == [40, 25, 12, 6, 6, 6]
    assert paper_batch_size(TIMM_ARCH) is None and "data.batch_size" not in paper_defaults(TIMM_ARCH, "mnist")
    defaults = paper_defaults("vgg13", "svhn")
    assert defaults["model.lr"] == 1e-6 and defaults["data.batch_size"] == 6 and defaults["trainer.max_epochs"] == 100


def test_mixed_precision_only_on_cuda():
    assert mixed_precision("auto", cuda_available=False, bf16_supported=False) is None
    assert mixed_precision("auto", cuda_available=True, bf16_supported=True) == "bf16-mixed"
    assert mixed_precision("gpu", cuda_available=True, bf16_supported=False) == "16-mixed"
    assert mixed_precision("cpu", cuda_available=True, bf16_supported=True) is None


def test_classifier_learning_rate_and_validation():
    assert ImageClassifier("resnet18").lr == 1e-3 and ImageClassifier("vgg13").lr == 1e-4
    assert ImageClassifier("resnet18", lr=3e-4).lr == 3e-4
    with pytest.raises(ValueError, match="model.head_size"):
        ImageClassifier("resnet18", num_classes=2, head_size=1)
    with pytest.raises(ValueError, match="unknown architecture"):
        ImageClassifier("resnet19")


def test_task_probabilities():
    logits = torch.tensor([[0.0, 0.0, 50.0], [2.0, 0.0, -50.0]])
    p = task_probabilities(logits, 2)  # restricted to the task classes, not the whole head
    assert p.shape == (2,) and torch.allclose(p, torch.tensor([0.5, torch.sigmoid(torch.tensor(-2.0)).item()]))
    assert task_probabilities(logits, 3).shape == (2, 3)


def test_classifier_metrics_and_optimizer_on_plain_tensors():
    """Epoch metrics equal the hand-computed ones, and a few Adam steps fit a separable toy set."""
    torch.manual_seed(0)
    module = ImageClassifier("resnet18", in_chans=1, num_classes=2, lr=1e-3)
    x = torch.randn(16, 1, 32, 32)
    y = (torch.arange(16) % 2).long()
    x[y == 1] += 1.0  # class 1 is brighter
    logged = {}
    module.log = lambda name, value, **kwargs: logged.__setitem__(name, value)
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["weight_decay"] == 1e-4
    module.train()
    for _ in range(15):
        optimizer.zero_grad()
        module.training_step((x, y), 0).backward()
        optimizer.step()
    module.eval()
    with torch.no_grad():
        module.test_step((x[:8], y[:8]), 0)
        module.test_step((x[8:], y[8:]), 1)
        logits = module(x)
    assert logged["test/loss"].compute() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-4)
    assert logged["test/acc"].compute() == pytest.approx((logits.argmax(1) == y).float().mean().item())
    assert logged["test/acc"].compute() == 1.0
    assert 0.99 <= logged["test/auroc"].compute() <= 1.0
