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

from dataclasses import asdict
from typing import Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader
from typing_extensions import override

from lightning_dims.callbacks.loggers import log_hyperparams, log_metrics
from lightning_dims.callbacks.sampling import (
    evaluation_mode,
    find_loader,
    first_batch,
    fixed_subset,
    on_strategy_device,
    rank_shard,
    subset_loader,
    sum_across_ranks,
)
from lightning_dims.data.spec import INTENSITY_RANGES
from lightning_dims.network.attack import (
    PGDSettings,
    attack_batch,
    attack_totals,
    check_bounds,
    check_range_use,
    import_foolbox,
    make_attacks,
    totals_over_loader,
)
from lightning_dims.network.batches import BatchFormat, Locator
from lightning_dims.network.sampling import module_device
from lightning_dims.properties.robustness import AttackMetrics, eps_key, parse_eps
from lightning_dims.records.contributions import RecordContributor
from lightning_dims.tracking import names
from lightning_dims.tracking.summary import log_wandb_table, update_wandb_summary

__all__ = [
    "AdversarialEvalCallback",
    "PGDSettings",
    "attack_batch",
    "attack_totals",
    "check_bounds",
    "import_foolbox",
    "intensity_bounds",
    "make_attacks",
    "robustness_metrics",
]

def intensity_bounds(datamodule: object) -> tuple[float, float]:
    """``(lo, hi)`` from a datamodule's preprocessing spec (``datamodule.spec.intensity``), as
    :data:`~lightning_dims.data.spec.INTENSITY_RANGES` gives it (``raw`` has none: pass bounds)."""
    intensity = getattr(getattr(datamodule, "spec", None), "intensity", None)
    if intensity not in INTENSITY_RANGES:
        where = "the Trainer has no lightning_dims datamodule" if intensity is None else f"the datamodule's spec intensity is {intensity!r}"
        raise ValueError(
            f"cannot tell the range of the model's inputs ({where}): pass bounds=(lo, hi) to AdversarialEvalCallback, "
            "e.g. (0, 1) for images scaled to [0, 1] or ((0 - mean) / std, (1 - mean) / std) for standardised ones"
        )
    return INTENSITY_RANGES[intensity]


def robustness_metrics(totals: torch.Tensor) -> dict[str, float]:
    """Means and penalties from summed totals (see :func:`attack_totals`), as a plain dict."""
    return AttackMetrics.from_totals(totals).model_dump(exclude_none=True)


class AdversarialEvalCallback(Callback, RecordContributor):
    """FGSM (and optional PGD) robustness of the trained model on the held-out test set, at ``on_fit_end``
    (and at the end of a standalone ``trainer.test``, or ``trainer.validate`` with ``source="val"``, on its loaders).

    Why ``on_fit_end``: it runs exactly once, after the last epoch (or early stop), whether or not
    ``trainer.test`` is called, and outside Lightning's evaluation loops and their inference mode
    and DDP wrapper, so the attack's input gradients cannot disturb training state. Lightning's
    teardown has moved the module to the CPU by then, so the callback moves it explicitly to the
    strategy's device (``trainer.strategy.root_device``) for the attack and back afterwards.

    Args:
        eps: attack strengths as fractions of the bounds' range, numbers or fractions (``"2/255"``).
        bounds: ``(lo, hi)``, the range the model's inputs can take; None reads it from a
            lightning_dims datamodule's preprocessing spec (``max255``: [0, 255], ``max1``: [0, 1]).
            Standardised inputs: ``((0 - mean) / std, (1 - mean) / std)``. Checked on the first
            batch at setup: inputs outside are an error, inputs using under 5% of the range a warning.
        pgd: also run PGD (foolbox ``LinfProjectedGradientDescentAttack``) at the same eps.
        pgd_steps, pgd_rel_stepsize: PGD iterations and step size relative to eps.
        source: ``"test"`` (held-out, default) or ``"val"``.
        max_samples: attack a seeded subset of this many samples (None: all).
        batch_size: attack batch size (None: the source loader's).
        seed: seed of the subset and of PGD's random start.
        dataloader: the loader to attack; None finds the source's loader (a datamodule's
            ``<source>_dataloader()``, val loaders passed to ``trainer.fit``, loaders passed to a
            standalone ``trainer.test``/``validate``, the LightningModule's ``test_dataloader()``;
            :func:`~lightning_dims.callbacks.sampling.find_loader`).
        inputs, targets: where the images and labels are in a batch (None: items 0 and 1 of a
            tuple, or a dict's ``image``/``x``/... and ``label``/``y``/... keys; a key, position or
            function; :class:`~lightning_dims.network.batches.BatchFormat`).
        logits: where the logits are in the model's output (None: the output, its item 0 or its
            ``"logits"``; a key, position or function of the output).

    Raises:
        ValueError: at setup, when there is no data to attack, no bounds, or inputs outside them.
        TypeError: at setup, when the first batch has no images or labels, or the output no logits.

    Under DDP every rank attacks its share of the samples and the sums are all-reduced, so each
    sample counts once and every rank ends with the same numbers.

    Example::

        AdversarialEvalCallback(eps=["2/255"], bounds=(0.0, 1.0), dataloader=test_loader)
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
        dataloader: DataLoader | None = None,
        inputs: Locator = None,
        targets: Locator = None,
        logits: Locator = None,
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
        self.dataloader = dataloader
        self.batch_format = BatchFormat(inputs=inputs, targets=targets, logits=logits)
        self.results: dict[str, dict[str, AttackMetrics]] = {}
        self.resolved_bounds: tuple[float, float] | None = None

    def loader(self, trainer: pl.Trainer) -> DataLoader:
        """The loader whose dataset is attacked (see ``dataloader``)."""
        return find_loader(trainer, self.source, self.dataloader, owner="AdversarialEvalCallback")

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Check the data, the bounds and the first batch now, so a config that cannot attack fails before training
        (or, in a standalone ``trainer.validate``/``test`` of the source's stage, before it runs)."""
        if stage not in ("fit", self.standalone_stage):
            return
        self.resolved_bounds = self.bounds or intensity_bounds(trainer.datamodule)
        loader = self.loader(trainer)
        n = len(loader.dataset)
        if n < trainer.world_size:
            raise ValueError(
                f"the {self.source} set has {n} samples, fewer than the {trainer.world_size} rank(s) sharing the "
                f"attack: give the datamodule a {self.source} split or drop AdversarialEvalCallback"
            )
        batch = first_batch(loader)
        x, _ = self.batch_format.images(batch), self.batch_format.labels(batch)
        check_bounds(x, self.resolved_bounds)
        check_range_use(float(x.min()), float(x.max()), self.resolved_bounds)
        device = module_device(pl_module)
        with evaluation_mode(pl_module), torch.no_grad():
            self.batch_format.logits_of(pl_module(x.to(device)))

    @property
    def standalone_stage(self) -> str:
        """The stage of a standalone run that attacks too: ``test`` for source test, ``validate`` for val."""
        return "test" if self.source == "test" else "validate"

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.attack_and_log(trainer, pl_module)

    @override
    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """In a standalone ``trainer.test`` (source test): attack its loaders (or ``dataloader=``) after testing."""
        if trainer.state.fn == "test" and self.standalone_stage == "test" and not self.results:  # not after a fit
            self.attack_and_log(trainer, pl_module)

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """In a standalone ``trainer.validate`` (source val): attack its loaders (or ``dataloader=``) after validating."""
        if trainer.state.fn == "validate" and self.standalone_stage == "validate" and not self.results:
            self.attack_and_log(trainer, pl_module)

    def attack_and_log(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
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
        loader = self.loader(trainer)
        indices = fixed_subset(len(loader.dataset), self.max_samples, self.seed)
        shard = subset_loader(loader, rank_shard(indices, trainer.global_rank, trainer.world_size), self.batch_size)
        results = {}
        with on_strategy_device(trainer, pl_module) as device, evaluation_mode(pl_module):
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                for name, attack in make_attacks(self.pgd).items():
                    torch.manual_seed(self.seed)
                    totals, span = totals_over_loader(pl_module, shard, self.batch_format, bounds, eps_abs, attack, device)
                    totals = sum_across_ranks(trainer, totals)
                    results[name] = {
                        eps_key(absolute): AttackMetrics.from_totals(row, eps=absolute, eps_fraction=eps)
                        for eps, absolute, row in zip(self.eps, eps_abs, totals)
                    }
        check_range_use(*span, bounds)
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

