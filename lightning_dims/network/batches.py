"""Where the images and labels are in a batch, and the logits in a model's output.

A loader may yield a tensor ``x``, a tuple or list ``(x, y, ...)``, or a dict such as
``{"image": x, "label": y}``; a model's ``forward`` may return the logits, a tuple such as
``(logits, features)`` or a dict such as ``{"logits": ...}``. :class:`BatchFormat` finds them:

* ``inputs`` / ``targets``: ``None`` looks in the usual places (a tuple's items 0 and 1; a dict's
  first key among :data:`INPUT_KEYS` / :data:`TARGET_KEYS`); a string is a dict key, an integer a
  tuple position, a callable ``batch -> tensor`` anything else;
* ``logits``: ``None`` takes a tensor output as it is, a tuple's or list's first item, a dict's
  ``"logits"``; a string, integer or callable ``output -> tensor`` as above.

Each failure names the batch's structure and the argument that fixes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["INPUT_KEYS", "TARGET_KEYS", "BatchFormat", "Locator", "LogitsModel", "describe"]

INPUT_KEYS = ("image", "images", "img", "x", "input", "inputs", "pixel_values")
"""Dict keys tried, in order, for the images of a dict batch."""

TARGET_KEYS = ("label", "labels", "y", "target", "targets", "class")
"""Dict keys tried, in order, for the class labels of a dict batch."""

Locator = str | int | Callable[[object], torch.Tensor] | None
"""Where a tensor is: a dict key, a tuple position, a function of the batch (or output), or None (the usual places)."""


def describe(value: object) -> str:
    """A short description of a batch's or output's structure (``dict with keys ['img', 'y']``, ``tuple of 3``)."""
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)}"
    if isinstance(value, Mapping):
        return f"dict with keys {list(value)}"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__} of {len(value)}"
    return type(value).__name__


def locate(value: object, where: Locator, position: int, keys: Sequence[str]) -> torch.Tensor | None:
    """The tensor at ``where`` in ``value``; with ``where=None``, at ``position`` of a sequence or the first of ``keys``."""
    if callable(where):
        found = where(value)
    elif isinstance(where, str):
        found = value.get(where) if isinstance(value, Mapping) else None
    elif isinstance(where, int):
        found = value[where] if isinstance(value, (list, tuple)) and -len(value) <= where < len(value) else None
    elif isinstance(value, Mapping):
        found = next((value[key] for key in keys if key in value), None)
    elif isinstance(value, (list, tuple)):
        found = value[position] if len(value) > position else None
    else:
        found = value if position == 0 else None
    return found if isinstance(found, torch.Tensor) else None


@dataclass(frozen=True)
class BatchFormat:
    """Finds the images and labels of a batch and the logits of a model's output (see the module docstring).

    Args:
        inputs: where the images are (None: item 0, or a dict's ``image``/``x``/... key).
        targets: where the integer class labels are (None: item 1, or a dict's ``label``/``y``/... key).
        logits: where the logits are in the model's output (None: the output, its item 0, or ``"logits"``).
    """

    inputs: Locator = None
    targets: Locator = None
    logits: Locator = None

    def images(self, batch: object) -> torch.Tensor:
        """The input tensor of ``batch``."""
        if self.inputs is None and isinstance(batch, torch.Tensor):
            return batch
        return self._find(batch, self.inputs, 0, INPUT_KEYS, "images", "inputs")

    def labels(self, batch: object) -> torch.Tensor:
        """The integer class labels of ``batch``."""
        return self._find(batch, self.targets, 1, TARGET_KEYS, "labels", "targets")

    @staticmethod
    def _find(batch: object, where: Locator, position: int, keys: Sequence[str], what: str, argument: str) -> torch.Tensor:
        found = locate(batch, where, position, keys)
        if found is None:
            raise TypeError(
                f"cannot find the {what} in a batch that is a {describe(batch)}: pass {argument}=<dict key, tuple "
                f"position or function of the batch> (by default: item {position}, or one of the keys {list(keys)})"
            )
        return found

    def logits_of(self, output: object) -> torch.Tensor:
        """The (B, classes) logits in a model's output."""
        found = locate(output, self.logits, 0, ("logits",))
        if found is None or found.ndim != 2:
            shape = "" if found is None else f" (found a tensor of shape {tuple(found.shape)}, not (batch, classes))"
            raise TypeError(
                f"cannot find the logits in a model output that is a {describe(output)}{shape}: pass logits=<dict key, "
                "tuple position or function of the output> (by default: the output, its item 0, or its 'logits')"
            )
        return found


class LogitsModel(nn.Module):
    """``model`` whose forward returns only the logits (:meth:`BatchFormat.logits_of`): what foolbox differentiates."""

    def __init__(self, model: nn.Module, batch_format: BatchFormat):
        super().__init__()
        self.model = model
        self.batch_format = batch_format
        self.training = model.training  # the wrapper's own flag only: foolbox checks it for eval mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.batch_format.logits_of(self.model(x))
