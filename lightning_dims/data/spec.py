"""The preprocessing spec: the units every K_F and d_data is measured in.

K_F is in inverse intensity units per flattened image, so it changes with size, channels and
intensity scaling (paper.md §2.2): numbers are only comparable under one spec. Every number
computed from data carries the spec it was computed under, and :func:`require_same_spec`
refuses comparisons across specs.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from lightning_dims.errors import LightningDimsError

__all__ = [
    "INTENSITY_RANGES",
    "INTENSITY_SCALINGS",
    "PreprocessingSpec",
    "SpecMismatchError",
    "as_nchw",
    "preprocess",
    "require_same_spec",
]

INTENSITY_SCALINGS = {
    "max255": 255.0,  # the paper: img * 255 / img.max()
    "max1": 1.0,  # img / img.max()
}
"""Each intensity scaling's per-image maximum (``raw`` is not scaled)."""

INTENSITY_RANGES = {intensity: (0.0, peak) for intensity, peak in INTENSITY_SCALINGS.items()}
"""Value range ``(lo, hi)`` of preprocessed images under each scaling: pixels are non-negative and
the maximum is the scale (``raw`` has no known range). FGSM clamps its adversarial images to it."""


class PreprocessingSpec(BaseModel):
    """How images are turned into the tensors that are measured and trained on.

    Attributes:
        size: side of the square output in pixels (bilinear, antialiased); None keeps the native size.
        channels: 1 (RGB converted to luminance) or 3 (gray replicated).
        intensity: ``max255`` (each image scaled so its maximum is 255; the paper), ``max1``
            (maximum 1), or ``raw`` (values as loaded, as float).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    size: int | None = Field(224, ge=2, le=4096)
    channels: Literal[1, 3] = 1
    intensity: Literal["max255", "max1", "raw"] = "max255"

    @classmethod
    def paper(cls, channels: Literal[1, 3] = 1) -> "PreprocessingSpec":
        """The paper's spec: per-image max scaled to 255, 224 x 224, no mean/std normalisation."""
        return cls(size=224, channels=channels, intensity="max255")

    def key(self) -> str:
        """A short canonical name, e.g. ``224px-1ch-max255``."""
        size = "native" if self.size is None else f"{self.size}px"
        return f"{size}-{self.channels}ch-{self.intensity}"


class SpecMismatchError(LightningDimsError, ValueError):
    """Two numbers computed under different preprocessing specs were about to be compared."""


def require_same_spec(a: PreprocessingSpec, b: PreprocessingSpec, what: str = "values") -> None:
    """Raise ``SpecMismatchError`` unless the two specs are equal."""
    if a != b:
        raise SpecMismatchError(
            f"cannot compare {what} measured under different preprocessing specs ({a.key()} vs {b.key()}): "
            "K_F and d_data depend on size, channels and intensity scaling; re-measure both under one spec"
        )


def as_nchw(images: torch.Tensor) -> torch.Tensor:
    """(N, H, W), (N, C, H, W) or channels-last (N, H, W, C) with C in {1, 3, 4} to float (N, C, H, W)."""
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[1] not in (1, 3) and images.shape[-1] in (1, 3, 4):
        images = images.permute(0, 3, 1, 2)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W) or (N, C, H, W), got shape {tuple(images.shape)}")
    if images.shape[1] == 4:  # RGBA: drop alpha
        images = images[:, :3]
    return images.to(torch.float32)


def preprocess(images: torch.Tensor, spec: PreprocessingSpec) -> torch.Tensor:
    """Apply ``spec`` to a batch of images; returns float32 (N, channels, size, size).

    Order: channels, resize, then intensity scaling, so that a ``max255`` image's maximum is
    exactly 255 in the output (never a rounding off). An image whose maximum is not positive
    (blank) is left unscaled.
    """
    x = as_nchw(images)
    if spec.channels == 1 and x.shape[1] == 3:
        weights = torch.tensor([0.2989, 0.587, 0.114], dtype=x.dtype, device=x.device)
        x = (x * weights[None, :, None, None]).sum(dim=1, keepdim=True)
    elif spec.channels == 3 and x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if spec.size is not None and tuple(x.shape[-2:]) != (spec.size, spec.size):
        x = F.interpolate(x, size=(spec.size, spec.size), mode="bilinear", antialias=True, align_corners=False)
    if spec.intensity in INTENSITY_SCALINGS:
        scale = INTENSITY_SCALINGS[spec.intensity]
        peak = x.flatten(1).amax(dim=1)[:, None, None, None]
        # x * (scale / peak) can land one rounding off scale at the peak (255.00003, 254.99998);
        # attacks and bounds checks need the maximum to be exactly the scale.
        factor = torch.where(peak > 0, scale / peak, torch.ones_like(peak))  # blank images stay as they are
        x = torch.where((x >= peak) & (peak > 0), scale, x * factor)
    return x.contiguous()
