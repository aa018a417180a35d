"""Adversarial robustness at the end of training: FGSM (and optionally PGD) through foolbox (paper §2.4).

FGSM: ``x_adv = clip(x + eps * sign(grad_x CE(f(x), y)), lo, hi)`` with foolbox's
``LinfFastGradientAttack``; PGD: foolbox's ``LinfProjectedGradientDescentAttack``. ``eps`` is given
in units of the intensity range ``hi - lo`` (the paper's 2/255: 2 grey levels on a [0, 255]
scale), so the same config means the same attack under ``max255`` and ``max1`` preprocessing;
results are keyed by the absolute eps in intensity units (``"2.0"`` under ``max255``), as the
results record defines. Per eps, over the held-out test set with the model in eval mode:

* ``clean_loss``, ``attacked_loss``: mean cross-entropy (nats per sample) on clean and attacked inputs;
* ``clean_acc``, ``attacked_acc``: fraction correctly classified;
* ``loss_penalty = attacked_loss - clean_loss`` (the quantity the paper correlates with K_F);
* ``acc_penalty = clean_acc - attacked_acc``.

In W&B (names that do not change with the spec): the first eps as ``fgsm/<metric>``, every eps in
the table ``fgsm/table`` (``pgd/...`` alike), the eps fractions in the config ``attack_eps_fraction``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from torch import nn

from lightning_dims.callbacks.loggers import log_hyperparams, log_metrics
from lightning_dims.callbacks.sampling import (
    batch_inputs,
    batch_targets,
    evaluation_mode,
    fixed_subset,
    on_strategy_device,
    rank_shard,
    stage_loader,
    subset_loader,
    sum_across_ranks,
)
from lightning_dims.data.spec import INTENSITY_RANGES
from lightning_dims.properties.robustness import (
    TOTALS,
    AttackMetrics,
    eps_key,
    parse_eps,
)
from lightning_dims.records.contributions import RecordContributor
from lightning_dims.tracking import names
from lightning_dims.tracking.summary import log_wandb_table, update_wandb_summary

BOUNDS_TOLERANCE = 1e-4
"""Inputs may exceed the bounds by this fraction of the range (float rounding) and are clamped; more is an error."""

def intensity_bounds(datamodule: object) -> tuple[float, float]:
    """``(lo, hi)`` from a datamodule's preprocessing spec (``datamodule.spec.intensity``), as
    :data:`~lightning_dims.data.spec.INTENSITY_RANGES` gives it (``raw`` has none: pass bounds)."""
    intensity = getattr(getattr(datamodule, "spec", None), "intensity", None)
    if intensity not in INTENSITY_RANGES:
        raise ValueError(
            f"cannot tell the input intensity range (datamodule spec intensity: {intensity!r}): "
            "pass bounds=[lo, hi] to AdversarialEvalCallback"
        )
    return INTENSITY_RANGES[intensity]


def check_bounds(x: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """``x`` clamped to ``bounds`` after checking it exceeds them by rounding at most (foolbox refuses any excess)."""
    lo, hi = bounds
    slack = BOUNDS_TOLERANCE * (hi - lo)
    x_min, x_max = float(x.min()), float(x.max())
    if x_min < lo - slack or x_max > hi + slack:
        raise ValueError(
            f"inputs span [{x_min:.6g}, {x_max:.6g}], outside the attack bounds [{lo:g}, {hi:g}]: "
            "pass the bounds of the model's input (bounds=[lo, hi]) to AdversarialEvalCallback"
        )
    return x.clamp(lo, hi)


def robustness_metrics(totals: torch.Tensor) -> dict[str, float]:
    """Means and penalties from summed totals (see :func:`attack_totals`), as a plain dict."""
    return AttackMetrics.from_totals(totals).model_dump(exclude_none=True)


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
    eval mode) on ``device``.
    """
    fb = import_foolbox()
    with torch.inference_mode(False), torch.enable_grad():
        x = check_bounds(x.to(device).clone(), bounds)
        y = y.to(device).clone()
        fmodel = fb.PyTorchModel(model, bounds=bounds, device=device)
        _, attacked, _ = attack(fmodel, x, y, epsilons=list(eps_abs))
        with torch.no_grad():
            logits = model(x)
            return [attack_totals(logits, model(x_adv), y) for x_adv in attacked]


class AdversarialEvalCallback(Callback, RecordContributor):
    """FGSM (and optional PGD) robustness of the trained model on the held-out test set, at ``on_fit_end``.

    Why ``on_fit_end``: it runs exactly once, after the last epoch (or early stop), whether or not
    ``trainer.test`` is called, and outside Lightning's evaluation loops and their inference mode
    and DDP wrapper, so the attack's input gradients cannot disturb training state. Lightning's
    teardown has moved the module to the CPU by then, so the callback moves it explicitly to the
    strategy's device (``trainer.strategy.root_device``) for the attack and back afterwards.

    Args:
        eps: attack strengths in units of the intensity range, numbers or fractions (``"2/255"``).
        bounds: input bounds ``[lo, hi]``; None reads them from the datamodule's preprocessing
            spec (``max255``: [0, 255], ``max1``: [0, 1]).
        pgd: also run PGD (foolbox ``LinfProjectedGradientDescentAttack``) at the same eps.
        pgd_steps, pgd_rel_stepsize: PGD iterations and step size relative to eps.
        source: ``"test"`` (held-out, default) or ``"val"``.
        max_samples: attack a seeded subset of this many samples (None: all).
        batch_size: attack batch size (None: the source loader's).
        seed: seed of the subset and of PGD's random start.

    Under DDP every rank attacks its share of the samples and the sums are all-reduced, so each
    sample counts once and every rank ends with the same numbers.
    """

    def __init__(
        self,
        eps: list[float | str] | None = None,
        bounds: tuple[float, float] | None = None,
        pgd: bool = False,
        pgd_steps: int = 40,
        pgd_rel_stepsize: float = 0.01 / 0.3,
        source: Literal["test", "val"] = "test",
        max_samples: int | None = None,
        batch_size: int | None = None,
        seed: int = 0,
    ):
        self.eps = [parse_eps(value) for value in (["2/255"] if eps is None else eps)]
        if not self.eps:
            raise ValueError("eps must list at least one attack strength, e.g. ['2/255']")
        keys = [eps_key(value) for value in self.eps]
        if len(set(keys)) != len(keys):
            raise ValueError(f"eps values {self.eps} are not distinct: {keys}")
        if bounds is not None and not (len(bounds) == 2 and bounds[0] < bounds[1]):
            raise ValueError(f"bounds must be [lo, hi] with lo < hi, got {bounds}")
        if source not in ("test", "val"):
            raise ValueError(f"source must be 'test' or 'val', got {source!r}")
        self.bounds = None if bounds is None else (float(bounds[0]), float(bounds[1]))
        self.pgd = PGDSettings(steps=pgd_steps, rel_stepsize=pgd_rel_stepsize) if pgd else None
        self.source = source
        self.max_samples = max_samples
        self.batch_size = batch_size
        self.seed = seed
        self.results: dict[str, dict[str, AttackMetrics]] = {}
        self.resolved_bounds: tuple[float, float] | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Check the bounds and the samples now, so a config that cannot attack fails before training."""
        if stage != "fit":
            return
        self.resolved_bounds = self.bounds or intensity_bounds(trainer.datamodule)
        n = len(stage_loader(trainer, self.source).dataset)
        if n < trainer.world_size:
            raise ValueError(
                f"the {self.source} set has {n} samples, fewer than the {trainer.world_size} rank(s) sharing the "
                f"attack: give the datamodule a {self.source} split or drop AdversarialEvalCallback"
            )

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Attack, then log the primary (first) eps as ``<attack>/<metric>`` and every eps in ``<attack>/table``."""
        self.results = self.evaluate(trainer, pl_module)
        primary = eps_key(self.eps[0] * (self.resolved_bounds[1] - self.resolved_bounds[0]))
        metrics = {
            names.attack(name, attack): getattr(per_eps[primary], name)
            for attack, per_eps in self.results.items()
            for name in names.FGSM_FIELDS
        }
        log_metrics(trainer, metrics)
        update_wandb_summary(trainer, metrics)
        log_hyperparams(trainer, {"attack_eps_fraction": list(self.eps)})
        columns = ["attack", "eps_fraction", "eps", *names.FGSM_FIELDS, "n"]
        for attack, per_eps in self.results.items():
            rows = [[attack, m.eps_fraction, m.eps, *(getattr(m, name) for name in names.FGSM_FIELDS), m.n] for m in per_eps.values()]
            log_wandb_table(trainer, f"{attack}/table", columns, rows)

    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, dict[str, AttackMetrics]]:
        """``{attack: {eps_key: metrics}}`` of ``pl_module`` over the test subset (every rank's share, summed)."""
        bounds = self.bounds or intensity_bounds(trainer.datamodule)
        self.resolved_bounds = bounds
        eps_abs = [eps * (bounds[1] - bounds[0]) for eps in self.eps]
        loader = stage_loader(trainer, self.source)
        indices = fixed_subset(len(loader.dataset), self.max_samples, self.seed)
        shard = rank_shard(indices, trainer.global_rank, trainer.world_size)
        results = {}
        with on_strategy_device(trainer, pl_module) as device, evaluation_mode(pl_module):
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                for name, attack in make_attacks(self.pgd).items():
                    torch.manual_seed(self.seed)
                    totals = torch.zeros(len(eps_abs), len(TOTALS), dtype=torch.float64, device=device)
                    for batch in subset_loader(loader, shard, self.batch_size):
                        batch_totals = attack_batch(
                            pl_module, batch_inputs(batch), batch_targets(batch), bounds, eps_abs, attack, device
                        )
                        totals += torch.stack(batch_totals)
                    totals = sum_across_ranks(trainer, totals)
                    results[name] = {
                        eps_key(absolute): AttackMetrics.from_totals(row, eps=absolute, eps_fraction=eps)
                        for eps, absolute, row in zip(self.eps, eps_abs, totals)
                    }
        return results

    def results_record_fields(self) -> dict:
        """``{"fgsm": {eps_key: metrics}, ["pgd": ...], "adversarial": settings}`` (empty before fit end).

        Keys are absolute eps in intensity units (see :func:`eps_key`); each entry also carries
        ``eps`` (absolute) and ``eps_fraction`` (of the intensity range) and ``n`` (samples attacked).
        """
        if not self.results:
            return {}
        settings = {
            "eps_fraction": list(self.eps),
            "bounds": list(self.resolved_bounds),
            "source": self.source,
            "pgd": None if self.pgd is None else asdict(self.pgd),
        }
        payload = {attack: {key: metrics.model_dump() for key, metrics in per_eps.items()} for attack, per_eps in self.results.items()}
        return {**payload, "adversarial": settings}

