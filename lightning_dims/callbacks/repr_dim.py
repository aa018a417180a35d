"""d_repr: the intrinsic dimension of a trained network's layer activations (paper §2.3).

For each named layer, the activations of a fixed, seeded subset of at most ``max_samples``
samples (validation set by default, training set as in the paper) are flattened to vectors and
their intrinsic dimension is estimated with the project's exact-kNN estimators: TwoNN (paper's
choice, default; ``mu_i = T_2/T_1``, slope of ``-log(1 - i/n)`` on ``log mu_(i)``) and/or the
Levina-Bickel MLE with k neighbours. Estimates are unitless and logged as
``d_repr/<layer>/<estimator>`` (dots in layer names as ``_``) and, for the paper's penultimate layer
(the module's ``feature_layer``), ``d_repr/penultimate/<estimator>``.

Memory bound: activations are kept as float32, ``max_samples * feature_dim * 4`` bytes per layer
(every rank holds the gathered set under DDP), plus the kNN working memory (512 MiB budget).
ResNet-18 ``layer4`` at 224 px has 25,088 features: 1,000 samples take 100 MB.

Degenerate representations: exact duplicate embeddings (dead ReLUs, a collapsed layer) are
dropped before estimating, with a warning naming the layer and the count; when fewer than 3
distinct embeddings remain (or the estimate is not a positive finite number) the callback warns
and records ``None`` (``on_degenerate="warn"``) or raises (``"raise"``). It never reports 0 or NaN.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info
from torch import nn
from torch.utils.data import DataLoader
from typing_extensions import override

from lightning_dims.callbacks.loggers import log_hyperparams, log_metrics
from lightning_dims.callbacks.sampling import (
    find_loader,
    fixed_subset,
    gather_rows,
    on_strategy_device,
    rank_shard,
)
from lightning_dims.network.activations import LayerSpec, default_layers, layer_list, resolve_module
from lightning_dims.network.batches import BatchFormat, Locator
from lightning_dims.network.representation import (
    DegenerateRepresentationError,
    LayerEstimate,
    ReprDimWarning,
    estimate_layer_dimensions,
    record_activations,
)
from lightning_dims.properties import ESTIMATORS, make_estimator
from lightning_dims.records.contributions import RecordContributor
from lightning_dims.tracking.names import PENULTIMATE, d_repr
from lightning_dims.tracking.summary import log_wandb_table, update_wandb_summary

__all__ = [
    "DegenerateRepresentationError",
    "LayerEstimate",
    "ReprDimCallback",
    "ReprDimWarning",
    "estimate_layer_dimensions",
    "network_of",
]


def network_of(pl_module: pl.LightningModule, attribute: str) -> nn.Module:
    """The network whose module names layer specs refer to: ``pl_module.<attribute>`` when it is a module,
    else ``pl_module`` itself (its layers then named with their attribute path, e.g. ``backbone.layer4``)."""
    network = getattr(pl_module, attribute, None) if attribute else None
    return network if isinstance(network, nn.Module) else pl_module


class ReprDimCallback(Callback, RecordContributor):
    """Logs d_repr of named layers every ``every_n_epochs`` epochs and at the end of training.

    Args:
        layers: a layer spec or a list of them (``"layer4"``, ``"avgpool"``, ``"classifier.3"``,
            ``"features:pool"``, ``"head.fc:input"``; see :mod:`lightning_dims.network.activations`),
            module names of the network ``pl_module.<network>``. None: the defaults of the known
            architecture found in it under any attribute (ResNet ``layer4`` + ``avgpool``, VGG
            ``classifier.3`` + ``features:pool``, timm pre-logits; ``backbone.layer4`` for a ResNet
            kept as ``self.backbone``), else the input of the last Linear, plus
            ``pl_module.feature_layer`` when the module names one (ImageClassifier does: the
            paper's penultimate layer, for timm the last stage). The layers chosen are logged at
            setup (``d_repr_layers`` in the loggers' config) and kept in the record.
        estimators: any of ``"twonn"`` (paper) and ``"mle"``.
        source: ``"val"`` (default) or ``"train"`` (the paper's choice): whose samples to embed.
        max_samples: cap on the samples embedded (a seeded subset fixed for the whole run);
            bounds memory at ``max_samples * feature_dim * 4`` bytes per layer.
        every_n_epochs: measure after every n-th training epoch; 0 measures only at the end.
        estimator_options: each estimator's own options by name, e.g. ``{"mle": {"k": 20}}``
            (``{"twonn": {"discard_fraction": 0.1}}``); unknown options fail at construction.
        batch_size: forward batch size (None: the source loader's).
        seed: seed of the subset.
        on_degenerate: ``"warn"`` (record None and warn) or ``"raise"`` when a layer has fewer
            distinct embeddings than the estimator needs.
        network: the attribute of the LightningModule holding the network (``"model"``, as
            ImageClassifier has it; ``"backbone"``; ``""`` for the LightningModule itself). When the
            module has no such attribute the LightningModule itself is the network.
        dataloader: the loader to embed; None finds the source's loader (a datamodule's
            ``<source>_dataloader()``, loaders passed to ``trainer.fit``, the LightningModule's own;
            :func:`~lightning_dims.callbacks.sampling.find_loader`).
        inputs: where the images are in a batch (None: item 0 of a tuple, or a dict's
            ``image``/``x``/... key; a key, position or function of the batch).

    Raises:
        ValueError: at setup, when a layer is not a module of the network or there is no data.
        TypeError: at setup, when the first batch has no images.

    Under DDP each rank embeds its share of the subset, the activations are gathered, rank 0
    estimates and broadcasts, so every rank logs and records the same numbers.
    """

    def __init__(
        self,
        layers: list[str] | str | None = None,
        estimators: list[str] | None = None,
        source: Literal["val", "train"] = "val",
        max_samples: int = 1000,
        every_n_epochs: int = 1,
        estimator_options: dict[str, dict] | None = None,
        batch_size: int | None = None,
        seed: int = 0,
        on_degenerate: Literal["warn", "raise"] = "warn",
        network: str = "model",
        dataloader: DataLoader | None = None,
        inputs: Locator = None,
    ):
        estimators = ["twonn"] if estimators is None else list(estimators)
        unknown = [name for name in estimators if name not in ESTIMATORS]
        if unknown or not estimators:
            raise ValueError(f"estimators must be a non-empty list of {sorted(ESTIMATORS)}, got {estimators}")
        if source not in ("val", "train"):
            raise ValueError(f"source must be 'val' or 'train', got {source!r}")
        if max_samples < 3:
            raise ValueError(f"max_samples must be at least 3 (TwoNN needs 3 distinct samples), got {max_samples}")
        if every_n_epochs < 0:
            raise ValueError(f"every_n_epochs must be >= 0 (0: only at the end), got {every_n_epochs}")
        if on_degenerate not in ("warn", "raise"):
            raise ValueError(f"on_degenerate must be 'warn' or 'raise', got {on_degenerate!r}")
        estimator_options = {name: dict(options) for name, options in (estimator_options or {}).items()}
        for name, options in estimator_options.items():
            make_estimator(name, **options)  # unknown estimators or options fail now, not after an epoch
        self.layers = layer_list(layers)
        self.estimators = estimators
        self.source = source
        self.max_samples = max_samples
        self.every_n_epochs = every_n_epochs
        self.estimator_options = estimator_options
        self.batch_size = batch_size
        self.seed = seed
        self.on_degenerate = on_degenerate
        self.network = network
        self.dataloader = dataloader
        self.batch_format = BatchFormat(inputs=inputs)
        self.history: list[dict] = []
        self._layers: list[str] | None = None
        self._indices: torch.Tensor | None = None

    # -- Lightning hooks -------------------------------------------------------------------------

    def loader(self, trainer: pl.Trainer) -> DataLoader:
        """The loader whose dataset is embedded (see ``dataloader``)."""
        return find_loader(trainer, self.source, self.dataloader, owner="ReprDimCallback")

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Resolve and log the layers, check the data and record the first batch now, so a wrong config fails
        before training, not after an epoch."""
        network = network_of(pl_module, self.network)
        self._layers = self.layers if self.layers is not None else default_layers(network)
        feature_layer = getattr(pl_module, "feature_layer", None)  # ImageClassifier: the paper's layer
        if self.layers is None and isinstance(feature_layer, str) and feature_layer not in self._layers:
            self._layers = [feature_layer, *self._layers]
        for layer in self._layers:
            resolve_module(network, LayerSpec.parse(layer).module)
        where = "the LightningModule" if network is pl_module else f"pl_module.{self.network}"
        rank_zero_info(f"ReprDimCallback: d_repr of {where}'s layers {self._layers}")
        log_hyperparams(trainer, {"d_repr_layers": list(self._layers)})
        if stage != "fit":
            return
        loader = self.loader(trainer)
        n = len(loader.dataset)
        if n < max(3, trainer.world_size):
            raise ValueError(
                f"d_repr needs at least 3 {self.source} samples (and one per rank), the {self.source} set has {n}: "
                f"give the Trainer a {self.source} loader with more samples or measure on source='train'"
            )
        with torch.random.fork_rng(devices=[]):  # the check leaves the training's random stream as it was
            record_activations(network, self._layers, loader, torch.arange(2), model=pl_module, batch_format=self.batch_format)

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._measure_and_log(trainer, pl_module)

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Measure the final weights, unless the last epoch's measurement already did."""
        if not self.history or self.history[-1]["global_step"] != trainer.global_step:
            self._measure_and_log(trainer, pl_module)

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Publish the final measurement (W&B summary and table).

        Also measures here when training did not run in this process (a run resumed after its last
        epoch, killed while testing): its history then comes from the checkpoint.
        """
        if not self.history or self.history[-1]["global_step"] != trainer.global_step:
            with on_strategy_device(trainer, pl_module):
                self._measure_and_log(trainer, pl_module)
        final = self.history[-1]
        update_wandb_summary(trainer, self.metric_names(pl_module, final["estimates"]))
        columns = ["epoch", "global_step", "layer", "estimator", "d_repr", "n_samples", "n_duplicates", "feature_dim"]
        rows = [
            [entry["epoch"], entry["global_step"], e.layer, e.estimator, e.value, e.n_samples, e.n_duplicates, e.feature_dim]
            for entry in self.history
            for e in entry["estimates"]
        ]
        log_wandb_table(trainer, "d_repr/table", columns, rows)

    # -- measuring -------------------------------------------------------------------------------

    def collect(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, torch.Tensor]:
        """This run's activations of every layer over the subset, gathered from all ranks (subset order)."""
        if self._layers is None:
            self.setup(trainer, pl_module, "fit")
        loader = self.loader(trainer)
        if self._indices is None:
            self._indices = fixed_subset(len(loader.dataset), self.max_samples, self.seed)
        shard = rank_shard(self._indices, trainer.global_rank, trainer.world_size)
        activations = record_activations(
            network_of(pl_module, self.network),
            self._layers,
            loader,
            shard,
            model=pl_module,
            batch_format=self.batch_format,
            batch_size=self.batch_size,
            device=pl_module.device,
            forward_context=trainer.precision_plugin.forward_context(),
        )
        return {layer: gather_rows(trainer, rows) for layer, rows in activations.items()}

    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> list[LayerEstimate]:
        """d_repr of every layer and estimator on the current weights (same result on every rank)."""
        activations = self.collect(trainer, pl_module)
        estimates = None
        if trainer.global_rank == 0:
            estimates = estimate_layer_dimensions(activations, self.estimators, self.estimator_options, self.on_degenerate)
        if trainer.world_size > 1:
            estimates = trainer.strategy.broadcast(estimates, src=0)
        return estimates

    def _measure_and_log(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        start = time.perf_counter()
        estimates = self.measure(trainer, pl_module)
        self.history.append(
            {
                "epoch": trainer.current_epoch,
                "global_step": trainer.global_step,
                "estimates": estimates,
                "seconds": time.perf_counter() - start,
            }
        )
        log_metrics(trainer, {key: value for key, value in self.metric_names(pl_module, estimates).items() if value is not None})

    def metric_names(self, pl_module: pl.LightningModule, estimates: Sequence[LayerEstimate]) -> dict[str, float | None]:
        """W&B names of the estimates: ``d_repr/<layer>/<estimator>`` (dots as ``_``), and for the module's
        ``feature_layer`` (the paper's penultimate layer) also ``d_repr/penultimate/<estimator>``."""
        penultimate = getattr(pl_module, "feature_layer", None)
        names: dict[str, float | None] = {}
        for e in estimates:
            names[d_repr(e.estimator, e.layer)] = e.value
            if e.layer == penultimate:
                names[d_repr(e.estimator, PENULTIMATE)] = e.value
        return names

    # -- checkpointing: a resumed run keeps its d_repr history -------------------------------------

    @property
    @override
    def state_key(self) -> str:
        """Distinct per configuration, so two ReprDim callbacks (e.g. val and train) keep separate histories."""
        return self._generate_state_key(layers=self.layers, estimators=self.estimators, source=self.source)

    @override
    def state_dict(self) -> dict:
        """The measurement history as plain types (loadable with ``torch.load(weights_only=True)``)."""
        return {"history": [entry | {"estimates": [asdict(e) for e in entry["estimates"]]} for entry in self.history]}

    @override
    def load_state_dict(self, state_dict: dict) -> None:
        self.history = [
            entry | {"estimates": [LayerEstimate(**e) for e in entry["estimates"]]} for entry in state_dict["history"]
        ]

    # -- results record --------------------------------------------------------------------------

    def results_record_fields(self) -> dict:
        """``{"d_repr": {layer: {estimator: value}}, "d_repr_details": {...}}`` of the final measurement."""
        if not self.history:
            return {}
        final = self.history[-1]
        d_repr: dict[str, dict[str, float | None]] = {}
        for e in final["estimates"]:
            d_repr.setdefault(e.layer, {})[e.estimator] = e.value
        return {
            "d_repr": d_repr,
            "d_repr_details": {
                "source": self.source,
                "layers": list(self._layers or [e.layer for e in final["estimates"]]),
                "max_samples": self.max_samples,
                "seed": self.seed,
                "epoch": final["epoch"],
                "global_step": final["global_step"],
                "seconds": final["seconds"],
                "estimates": [asdict(e) for e in final["estimates"]],
            },
        }
