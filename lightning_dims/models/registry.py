"""Architecture registry, timm-style: ``create_model(name, in_chans, num_classes, pretrained)``.

The paper's six networks (ResNet-18/34/50, VGG-13/16/19) are built from torchvision, as in the
authors' code, with two changes (paper.md §4):

* the first convolution takes ``in_chans`` channels (1 for MNIST and radiology images);
* the head has ``num_classes`` logits (2 for the paper's binary tasks by default; the authors kept
  ImageNet's 1000-logit head, so ``num_classes=1000`` is the parity option).

Any other name is passed to ``timm.create_model`` (``timm/<name>`` forces timm when a name is
registered here too, e.g. ``timm/resnet18``). New architectures are one decorated function::

    @register_model("my_net", family="resnet", feature_layer="layer4")
    def my_net(in_chans: int, num_classes: int, pretrained: bool) -> nn.Module: ...

Weights are random by default; ``pretrained=True`` loads the ImageNet weights (downloaded by
torchvision/timm on first use). With pretrained weights and ``in_chans=1`` the first convolution's
RGB kernels are summed, the usual adaptation (``timm.models.adapt_input_conv``), so a gray image
replicated to RGB and the gray image give the same first-layer response.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from lightning_dims.errors import require

__all__ = [
    "TIMM_PREFIX",
    "ArchSpec",
    "ModelBuilder",
    "adapt_conv",
    "arch_spec",
    "create_model",
    "feature_layer",
    "list_models",
    "register_model",
    "resize_linear",
]

ModelBuilder = Callable[[int, int, bool], nn.Module]
"""(in_chans, num_classes, pretrained) -> network returning logits of shape (B, num_classes)."""

TIMM_PREFIX = "timm/"


@dataclass(frozen=True)
class ArchSpec:
    """A registered architecture.

    Attributes:
        name: registry name (``--model.arch``).
        builder: the function that builds the network.
        family: ``resnet`` or ``vgg`` for the paper's networks (the paper preset depends on it),
            ``timm`` for timm models.
        feature_layer: the paper's "penultimate" layer for d_repr (paper.md §2.3), as a
            ``get_submodule`` name: ResNet ``layer4``, VGG ``classifier.3`` (second fully connected).
    """

    name: str
    builder: ModelBuilder
    family: str
    feature_layer: str | None


_REGISTRY: dict[str, ArchSpec] = {}


def register_model(name: str, family: str, feature_layer: str | None) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator adding a builder to the registry under ``name``."""

    def add(builder: ModelBuilder) -> ModelBuilder:
        if name in _REGISTRY:
            raise ValueError(f"architecture {name!r} is already registered")
        _REGISTRY[name] = ArchSpec(name=name, builder=builder, family=family, feature_layer=feature_layer)
        return builder

    return add


def list_models() -> list[str]:
    """The registered names (any timm model name is accepted as well)."""
    return sorted(_REGISTRY)


def _timm():
    return require("timm")  # the train extra


def arch_spec(name: str) -> ArchSpec:
    """The registry entry for ``name``; timm names get a ``timm`` entry built on the fly.

    Raises:
        ValueError: the name is neither registered nor a timm model, listing the registered names.
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    timm_name = name.removeprefix(TIMM_PREFIX)
    if _timm().models.is_model(timm_name):
        return ArchSpec(name=name, builder=_timm_builder(timm_name), family="timm", feature_layer=None)
    raise ValueError(
        f"unknown architecture {name!r}: use one of {', '.join(list_models())} "
        "or a timm model name (python -c 'import timm; print(timm.list_models())')"
    )


def create_model(name: str, in_chans: int = 1, num_classes: int = 2, pretrained: bool = False) -> nn.Module:
    """Build the network ``name`` for ``in_chans``-channel images and ``num_classes`` logits."""
    if in_chans < 1:
        raise ValueError(f"in_chans must be >= 1, got {in_chans}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return arch_spec(name).builder(in_chans, num_classes, pretrained)


def feature_layer(name: str, model: nn.Module | None = None) -> str | None:
    """The paper's penultimate layer of ``name`` (timm: the last feature stage of ``model``)."""
    spec = arch_spec(name)
    if spec.feature_layer is None and model is not None and getattr(model, "feature_info", None):
        return model.feature_info[-1]["module"]
    return spec.feature_layer


def adapt_conv(conv: nn.Conv2d, in_chans: int, keep_weights: bool) -> nn.Conv2d:
    """A copy of ``conv`` taking ``in_chans`` input channels.

    With ``keep_weights`` the kernels are mapped as in timm (1 channel: sum over RGB; other
    counts: RGB kernels repeated and rescaled by 3/in_chans); otherwise freshly initialised.
    """
    if conv.in_channels == in_chans:
        return conv
    new = nn.Conv2d(
        in_chans,
        conv.out_channels,
        kernel_size=conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    )
    if keep_weights:
        from timm.models import adapt_input_conv

        with torch.no_grad():
            new.weight.copy_(adapt_input_conv(in_chans, conv.weight))
            if conv.bias is not None:
                new.bias.copy_(conv.bias)
    return new


def resize_linear(linear: nn.Linear, num_classes: int) -> nn.Linear:
    """``linear`` itself when it already has ``num_classes`` outputs, else a fresh one that does."""
    if linear.out_features == num_classes:
        return linear
    return nn.Linear(linear.in_features, num_classes, bias=linear.bias is not None)


def _torchvision(name: str, pretrained: bool) -> nn.Module:
    import torchvision

    return torchvision.models.get_model(name, weights="DEFAULT" if pretrained else None)


def _resnet_builder(name: str) -> ModelBuilder:
    def build(in_chans: int, num_classes: int, pretrained: bool) -> nn.Module:
        model = _torchvision(name, pretrained)
        model.conv1 = adapt_conv(model.conv1, in_chans, keep_weights=pretrained)
        model.fc = resize_linear(model.fc, num_classes)
        return model

    build.__name__ = name
    build.__doc__ = f"torchvision {name}: ``conv1`` adapted to ``in_chans``, ``fc`` sized to ``num_classes``."
    return build


def _vgg_builder(name: str) -> ModelBuilder:
    def build(in_chans: int, num_classes: int, pretrained: bool) -> nn.Module:
        model = _torchvision(name, pretrained)
        model.features[0] = adapt_conv(model.features[0], in_chans, keep_weights=pretrained)
        model.classifier[6] = resize_linear(model.classifier[6], num_classes)
        return model

    build.__name__ = name
    build.__doc__ = (
        f"torchvision {name}: ``features.0`` adapted to ``in_chans``, ``classifier.6`` sized to ``num_classes``."
    )
    return build


def _timm_builder(name: str) -> ModelBuilder:
    def build(in_chans: int, num_classes: int, pretrained: bool) -> nn.Module:
        return _timm().create_model(name, pretrained=pretrained, in_chans=in_chans, num_classes=num_classes)

    build.__name__ = name
    return build


for _name in ("resnet18", "resnet34", "resnet50"):
    register_model(_name, family="resnet", feature_layer="layer4")(_resnet_builder(_name))
for _name in ("vgg13", "vgg16", "vgg19"):
    register_model(_name, family="vgg", feature_layer="classifier.3")(_vgg_builder(_name))
