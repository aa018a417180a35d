"""Adversarial robustness without a Trainer: FGSM (and optionally PGD) through foolbox (paper §2.4).

FGSM: ``x_adv = clip(x + eps * sign(grad_x CE(f(x), y)), lo, hi)`` with foolbox's
``LinfFastGradientAttack``; PGD: foolbox's ``LinfProjectedGradientDescentAttack``. ``eps`` is given
as a fraction of the bounds' range ``hi - lo`` (the paper's 2/255: 2 grey levels on a [0, 255]
scale); results are keyed by the absolute eps in input units (:func:`~lightning_dims.properties.
robustness.eps_key`). Per eps, over the samples with the model in eval mode: ``clean_loss``,
``attacked_loss`` (mean cross-entropy, nats), ``clean_acc``, ``attacked_acc``, ``loss_penalty =
attacked_loss - clean_loss`` (what the paper correlates with K_F), ``acc_penalty``
(:class:`~lightning_dims.properties.robustness.AttackMetrics`).

Bounds are the range the model's inputs can take: ``(0, 255)`` under the paper's ``max255``
preprocessing, ``(0, 1)`` for inputs scaled to [0, 1], and for standardised inputs
``x' = (x - mean) / std`` of [0, 1] images ``((0 - mean) / std, (1 - mean) / std)``. They are
checked against the inputs actually attacked:

* inputs outside the bounds (beyond :data:`BOUNDS_TOLERANCE` of the range, float rounding) are an
  error naming the bounds to pass; within it they are clamped;
* inputs spanning less than :data:`RANGE_USE_WARNING` of the range (``[0, 1]`` images attacked
  with bounds ``(0, 255)``: eps 255 times too large) give a :class:`BoundsWarning`;
* exact bounds are rounded inward to the inputs' float type (:func:`representable_bounds`), so an
  input clamped to a bound is never below it by float rounding (foolbox asserts it is not).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from lightning_dims.network.batches import BatchFormat, Locator, LogitsModel
from lightning_dims.network.sampling import evaluation_mode, fixed_subset, module_device, on_device, subset_loader
from lightning_dims.properties.robustness import TOTALS, AttackMetrics, eps_key, parse_eps

__all__ = [
    "BOUNDS_TOLERANCE",
    "RANGE_USE_WARNING",
    "BoundsWarning",
    "PGDSettings",
    "adversarial_robustness",
    "attack_batch",
    "attack_totals",
    "check_bounds",
    "check_range_use",
    "import_foolbox",
    "make_attacks",
    "representable_bounds",
    "totals_over_loader",
]

BOUNDS_TOLERANCE = 1e-4
"""Inputs may exceed the bounds by this fraction of the range (float rounding) and are clamped; more is an error."""

RANGE_USE_WARNING = 0.05
"""Inputs spanning less than this fraction of the bounds' range get a :class:`BoundsWarning`."""


class BoundsWarning(UserWarning):
    """The attacked inputs use a small part of the attack bounds: eps (a fraction of the bounds' range) is too large."""


def representable_bounds(bounds: tuple[float, float], dtype: torch.dtype) -> tuple[float, float]:
    """``bounds`` rounded inward to values of ``dtype``: ``lo' >= lo``, ``hi' <= hi``, both exactly representable.

    A float32 input clamped to a bound given in float64 (``-0.4242...``, a standardised 0) rounds to
    the nearest float32, which may lie just outside it; clamped to these it never does.
    """
    lo, hi = (torch.tensor(float(value), dtype=torch.float64).to(dtype) for value in bounds)
    if float(lo) < bounds[0]:
        lo = torch.nextafter(lo, torch.tensor(math.inf, dtype=dtype))
    if float(hi) > bounds[1]:
        hi = torch.nextafter(hi, torch.tensor(-math.inf, dtype=dtype))
    return float(lo), float(hi)


def check_bounds(x: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """``x`` clamped to :func:`representable_bounds` after checking it exceeds ``bounds`` by rounding at most.

    Raises ``ValueError`` naming the fix when the inputs lie outside the bounds.
    """
    lo, hi = bounds
    slack = BOUNDS_TOLERANCE * (hi - lo)
    x_min, x_max = float(x.min()), float(x.max())
    if x_min < lo - slack or x_max > hi + slack:
        raise ValueError(
            f"inputs span [{x_min:.6g}, {x_max:.6g}], outside the attack bounds [{lo:g}, {hi:g}]: pass the range the "
            "model's inputs can take as bounds=(lo, hi), e.g. (0, 1) for images scaled to [0, 1], or "
            "((0 - mean) / std, (1 - mean) / std) for standardised ones"
        )
    return x.clamp(*representable_bounds(bounds, x.dtype))


def check_range_use(x_min: float, x_max: float, bounds: tuple[float, float]) -> None:
    """Warn (:class:`BoundsWarning`) when inputs spanning ``[x_min, x_max]`` use little of the bounds' range."""
    lo, hi = bounds
    used = (x_max - x_min) / (hi - lo)
    if used < RANGE_USE_WARNING:
        warnings.warn(
            f"the attacked inputs span [{x_min:.4g}, {x_max:.4g}], {100 * used:.2g}% of the attack bounds "
            f"[{lo:g}, {hi:g}]; eps is a fraction of the bounds' range, so the attack is about {1 / used:.3g} times "
            "stronger than asked: pass the range the model's inputs can take as bounds (e.g. bounds=(0, 1) for "
            "images scaled to [0, 1])",
            BoundsWarning,
            stacklevel=3,
        )


def attack_totals(logits: torch.Tensor, attacked_logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """float64 sums ``[n, clean_loss_sum, attacked_loss_sum, clean_correct, attacked_correct]`` of a batch."""
    return torch.stack(
        [
            torch.tensor(float(y.shape[0]), dtype=torch.float64, device=y.device),
            F.cross_entropy(logits.double(), y, reduction="sum"),
            F.cross_entropy(attacked_logits.double(), y, reduction="sum"),
            (logits.argmax(dim=1) == y).sum().double(),
            (attacked_logits.argmax(dim=1) == y).sum().double(),
        ]
    )


@dataclass(frozen=True)
class PGDSettings:
    """foolbox ``LinfProjectedGradientDescentAttack`` settings (its defaults; step = rel_stepsize * eps)."""

    steps: int = 40
    rel_stepsize: float = 0.01 / 0.3
    random_start: bool = True


def import_foolbox():
    """foolbox, importable without a ``git`` executable (its GitPython import otherwise fails)."""
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    import foolbox

    return foolbox


def make_attacks(pgd: PGDSettings | None) -> dict[str, object]:
    """``{"fgsm": LinfFastGradientAttack(), "pgd": LinfProjectedGradientDescentAttack(...)}`` (PGD if asked)."""
    fb = import_foolbox()

    attacks = {"fgsm": fb.attacks.LinfFastGradientAttack()}
    if pgd is not None:
        attacks["pgd"] = fb.attacks.LinfProjectedGradientDescentAttack(
            steps=pgd.steps, rel_stepsize=pgd.rel_stepsize, random_start=pgd.random_start
        )
    return attacks


def attack_batch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    bounds: tuple[float, float],
    eps_abs: Sequence[float],
    attack: object,
    device: torch.device,
) -> list[torch.Tensor]:
    """Attack one batch at each absolute eps; returns one :func:`attack_totals` vector per eps.

    Runs with autograd enabled even inside Lightning's ``torch.inference_mode()``: the inputs are
    cloned out of inference mode and foolbox differentiates through ``model`` (which must be in
    eval mode and return the logits, see :class:`~lightning_dims.network.batches.LogitsModel`) on
    ``device``. The inputs are clamped to :func:`representable_bounds` (see :func:`check_bounds`).
    """
    fb = import_foolbox()
    with torch.inference_mode(False), torch.enable_grad():
        x = check_bounds(x.to(device).clone(), bounds)
        y = y.to(device).clone()
        fmodel = fb.PyTorchModel(model, bounds=representable_bounds(bounds, x.dtype), device=device)
        _, attacked, _ = attack(fmodel, x, y, epsilons=list(eps_abs))
        with torch.no_grad():
            logits = model(x)
            return [attack_totals(logits, model(x_adv), y) for x_adv in attacked]


def totals_over_loader(
    model: nn.Module,
    loader: DataLoader,
    batch_format: BatchFormat,
    bounds: tuple[float, float],
    eps_abs: Sequence[float],
    attack: object,
    device: torch.device,
) -> tuple[torch.Tensor, tuple[float, float]]:
    """Summed :func:`attack_totals` ``(len(eps_abs), len(TOTALS))`` over ``loader``, and the inputs' (min, max).

    ``model`` is called through :class:`~lightning_dims.network.batches.LogitsModel`, so a
    forward returning a tuple or dict works; the model must already be in eval mode on ``device``.
    """
    logits_model = LogitsModel(model, batch_format)
    totals = torch.zeros(len(eps_abs), len(TOTALS), dtype=torch.float64, device=device)
    x_min, x_max = math.inf, -math.inf
    for batch in loader:
        x, y = batch_format.images(batch), batch_format.labels(batch)
        x_min, x_max = min(x_min, float(x.min())), max(x_max, float(x.max()))
        totals += torch.stack(attack_batch(logits_model, x, y, bounds, eps_abs, attack, device))
    return totals, (x_min, x_max)


def adversarial_robustness(
    model: nn.Module,
    loader: DataLoader,
    eps: Iterable[float | str] = ("2/255",),
    *,
    bounds: tuple[float, float],
    pgd: PGDSettings | None = None,
    max_samples: int | None = None,
    inputs: Locator = None,
    targets: Locator = None,
    logits: Locator = None,
    batch_size: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> dict[str, dict[str, AttackMetrics]]:
    """FGSM (and PGD when ``pgd`` is given) robustness of ``model`` on ``loader``'s dataset, without a Trainer.

    Args:
        model: a classifier (any ``nn.Module``); its output may be a tuple or dict (``logits``).
        loader: a DataLoader of (images, labels) tuples or dicts; only its dataset, collate
            function and workers are used (never its sampler).
        eps: attack strengths as fractions of the bounds' range (``"2/255"``, 0.01).
        bounds: ``(lo, hi)``, the range the model's inputs can take (see the module docstring).
        pgd: PGD settings (:class:`PGDSettings`), or None for FGSM only.
        max_samples: attack a subset of this many samples drawn with ``seed`` (None: all).
        inputs, targets, logits: where the images and labels are in a batch and the logits in
            the model's output (:class:`~lightning_dims.network.batches.BatchFormat`).
        batch_size: attack batch size (None: the loader's).
        seed: seed of the subset and of PGD's random start.
        device: where to attack (None: where the model's parameters are); the model is moved
            there for the call and back after.

    Returns:
        ``{"fgsm": {eps_key: AttackMetrics}, ["pgd": {...}]}``, keyed by the absolute eps in input units.

    Raises:
        ValueError: inputs outside ``bounds``; bad eps or bounds.

    Example::

        adversarial_robustness(model, test_loader, eps=["2/255"], bounds=(0.0, 1.0))["fgsm"]["0.0078431372549"].loss_penalty
    """
    fractions = [parse_eps(value) for value in eps]
    if not fractions:
        raise ValueError("eps must list at least one attack strength, e.g. ['2/255']")
    if len(bounds) != 2 or not bounds[0] < bounds[1]:
        raise ValueError(f"bounds must be (lo, hi) with lo < hi, got {bounds}")
    bounds = (float(bounds[0]), float(bounds[1]))
    eps_abs = [fraction * (bounds[1] - bounds[0]) for fraction in fractions]
    batch_format = BatchFormat(inputs=inputs, targets=targets, logits=logits)
    subset = subset_loader(loader, fixed_subset(len(loader.dataset), max_samples, seed), batch_size)
    device = torch.device(device) if device is not None else module_device(model)
    results = {}
    with on_device(model, device), evaluation_mode(model), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for name, attack in make_attacks(pgd).items():
            torch.manual_seed(seed)
            totals, span = totals_over_loader(model, subset, batch_format, bounds, eps_abs, attack, device)
            results[name] = {
                eps_key(absolute): AttackMetrics.from_totals(row, eps=absolute, eps_fraction=fraction)
                for fraction, absolute, row in zip(fractions, eps_abs, totals)
            }
    check_range_use(*span, bounds)
    return results
