"""Recording a network's layer activations with forward hooks, under a memory cap.

A layer is named by a *layer spec*, ``"<module name>[:<view>]"``, with the module name as in
``network.named_modules()`` (``layer4``, ``classifier.3``, ``head.fc``) and the view one of

* ``output`` (default): the module's output, flattened per sample (ResNet ``layer4``: 512x7x7);
* ``pool``: the output averaged over its spatial dimensions, ``(B, C, H, W) -> (B, C)``;
* ``input``: the module's first input, flattened (``fc:input`` is the pooled pre-logits vector).

Memory: the recorder keeps at most ``max_rows`` rows per layer, as float32 on the CPU, i.e. at most
``max_rows * feature_dim * 4`` bytes per layer (ResNet-18 ``layer4`` at 224 px, 25,088 features,
1,000 rows: 100 MB).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "VIEWS",
    "ActivationRecorder",
    "LayerSpec",
    "architecture_layers",
    "default_layers",
    "layer_list",
    "module_names",
    "resolve_module",
    "view_rows",
]

VIEWS = ("output", "pool", "input")


@dataclass(frozen=True)
class LayerSpec:
    """A module of the network and which view of it to record (see the module docstring)."""

    module: str
    view: str = "output"

    @classmethod
    def parse(cls, spec: str) -> "LayerSpec":
        if not isinstance(spec, str):
            raise TypeError(f"a layer spec is a string such as 'layer4' or 'fc:input', got {type(spec).__name__} {spec!r}")
        name, _, view = spec.partition(":")
        view = view or "output"
        if not name or view not in VIEWS:
            raise ValueError(f"bad layer spec {spec!r}: write '<module name>' or '<module name>:{'|'.join(VIEWS)}'")
        return cls(name, view)

    def __str__(self) -> str:
        return self.module if self.view == "output" else f"{self.module}:{self.view}"


def module_names(network: nn.Module) -> list[str]:
    """Names of all submodules of ``network``, as accepted in a layer spec."""
    return [name for name, _ in network.named_modules() if name]


def resolve_module(network: nn.Module, name: str) -> nn.Module:
    """``network.get_submodule(name)`` with an error listing the valid names."""
    try:
        return network.get_submodule(name)
    except AttributeError:
        names = module_names(network)
        shown = ", ".join(names[:40]) + (", ..." if len(names) > 40 else "")
        raise ValueError(f"the network has no module {name!r}; module names are: {shown}") from None


def architecture_layers(name: str, module: nn.Module) -> list[str] | None:
    """The default layers of ``module`` if it is a known architecture (names prefixed by ``name``), else None.

    * timm models (have ``get_classifier()``): the classifier's input, the pooled pre-logits;
    * torchvision ResNet (has ``layer4`` and ``avgpool``): ``layer4`` (flattened feature map, the
      paper's layer) and ``avgpool`` (the pooled 512/2048-d vector);
    * torchvision VGG (``features`` and a ``classifier`` whose item 3 is Linear): ``classifier.3``
      (the second fully connected layer, the paper's layer) and ``features:pool``.
    """
    prefix = f"{name}." if name else ""
    children = dict(module.named_children())
    if callable(getattr(module, "get_classifier", None)):
        head = module.get_classifier()
        head_name = next((sub for sub, m in module.named_modules() if m is head and sub), None)
        if head_name is not None:
            return [f"{prefix}{head_name}:input"]
    if "layer4" in children and "avgpool" in children:
        return [f"{prefix}layer4", f"{prefix}avgpool"]
    classifier = children.get("classifier")
    if "features" in children and isinstance(classifier, nn.Sequential) and len(classifier) > 3:
        if isinstance(classifier[3], nn.Linear):
            return [f"{prefix}classifier.3", f"{prefix}features:pool"]
    return None


def default_layers(network: nn.Module) -> list[str]:
    """The paper's "penultimate" layer and the pooled feature vector of the known architecture in ``network``.

    The outermost module that is a known architecture (:func:`architecture_layers`: timm, ResNet,
    VGG) is found under any attribute (``backbone.layer4`` for a ResNet stored as ``self.backbone``);
    without one, the input of the last ``nn.Linear``, i.e. the pre-logits vector.
    """
    for name, module in network.named_modules():
        layers = architecture_layers(name, module)
        if layers is not None:
            return layers
    linear = [name for name, module in network.named_modules() if isinstance(module, nn.Linear) and name]
    if linear:
        return [f"{linear[-1]}:input"]
    raise ValueError(
        f"no default layers for {type(network).__name__} (no ResNet/VGG/timm structure, no nn.Linear): "
        "pass layers=[...] with module names, e.g. the ones listed by lightning_dims.callbacks.module_names(model)"
    )


def layer_list(layers: str | Iterable[str] | None) -> list[str] | None:
    """Layer specs as a list of canonical strings: a bare string is one layer; None stays None (the defaults)."""
    if layers is None:
        return None
    if isinstance(layers, str):
        layers = [layers]
    specs = [str(LayerSpec.parse(layer)) for layer in layers]
    if not specs:
        raise ValueError("layers is empty: name at least one layer, or pass None for the architecture's defaults")
    return specs


def view_rows(value: torch.Tensor, view: str) -> torch.Tensor:
    """One float32 row per sample of a hooked tensor, per the view (see the module docstring)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"a hooked layer produced {type(value).__name__}, not a tensor: hook another module")
    if view == "pool":
        if value.ndim < 3:
            raise ValueError(f"':pool' needs a (B, C, spatial...) tensor, got shape {tuple(value.shape)}")
        value = value.flatten(2).mean(dim=2)
    return value.detach().flatten(1).to(torch.float32)


class ActivationRecorder:
    """Forward hooks recording the views of named layers of ``network`` while active.

    Use as a context manager: hooks are attached on entry and removed on exit. Rows are copied to
    the CPU as they come; once a layer holds ``max_rows`` rows, further rows are dropped.
    """

    def __init__(self, network: nn.Module, layers: Iterable[str], max_rows: int):
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows}")
        self.specs = [LayerSpec.parse(layer) for layer in layers]
        if not self.specs:
            raise ValueError("no layers to record: pass at least one layer spec")
        self.modules = {spec: resolve_module(network, spec.module) for spec in self.specs}
        self.max_rows = max_rows
        self._rows: dict[LayerSpec, list[torch.Tensor]] = {spec: [] for spec in self.specs}
        self._counts: dict[LayerSpec, int] = {spec: 0 for spec in self.specs}
        self._handles: list = []

    def _store(self, spec: LayerSpec, value: torch.Tensor) -> None:
        room = self.max_rows - self._counts[spec]
        if room <= 0:
            return
        rows = view_rows(value, spec.view)[:room].cpu()
        self._rows[spec].append(rows)
        self._counts[spec] += rows.shape[0]

    def _hook(self, spec: LayerSpec):
        if spec.view == "input":

            def pre_hook(module, args):
                if not args:
                    raise TypeError(f"{spec.module} was called without positional input: ':input' cannot record it")
                self._store(spec, args[0])

            return pre_hook

        def hook(module, args, output):
            self._store(spec, output)

        return hook

    def __enter__(self) -> "ActivationRecorder":
        for spec, module in self.modules.items():
            if spec.view == "input":
                self._handles.append(module.register_forward_pre_hook(self._hook(spec)))
            else:
                self._handles.append(module.register_forward_hook(self._hook(spec)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def activations(self) -> dict[str, torch.Tensor]:
        """``{layer spec string: (n, D) float32 CPU tensor}`` of what was recorded."""
        out = {}
        for spec in self.specs:
            if not self._rows[spec]:
                raise RuntimeError(
                    f"layer {spec} recorded nothing: the module was not called in the forward pass; pick another layer"
                )
            out[str(spec)] = torch.cat(self._rows[spec])
        return out
