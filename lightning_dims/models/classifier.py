"""The LightningModule: one registry network trained with cross-entropy and Adam (paper.md §4).

Logged per stage (``train``, ``val``, ``test``), epoch-level and synchronised across DDP ranks by
torchmetrics (the loss too: a sample-weighted mean, exact over the whole split):

* ``{stage}/loss``: mean cross-entropy in nats per image, over all ``head_size`` logits;
* ``{stage}/acc``: fraction of images whose arg-max logit (over all ``head_size`` logits) is the label;
* ``{stage}/auroc`` (val/test): area under the ROC curve of the task-class probabilities
  (:func:`task_probabilities`); binary for two classes, macro one-vs-rest otherwise.

``train/loss`` is also logged per step for the progress bar and W&B.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import BinaryAUROC, MulticlassAccuracy, MulticlassAUROC
from typing_extensions import override

from lightning_dims.models.presets import paper_learning_rate
from lightning_dims.models.registry import arch_spec, create_model, feature_layer
from lightning_dims.tracking.names import split_metric

__all__ = ["STAGES", "ImageClassifier", "channels_last_on_cuda", "stage_metrics", "task_probabilities"]

STAGES = ("train", "val", "test")


def task_probabilities(logits: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class probabilities restricted to the task's ``num_classes`` classes.

    ``softmax(logits[:, :num_classes])``; identical to the full softmax when the head has exactly
    ``num_classes`` logits, and well defined for the 1000-logit parity head. For two classes,
    returns the probability of class 1, shape (B,); otherwise (B, num_classes).
    """
    probs = torch.softmax(logits[:, :num_classes].float(), dim=1)
    return probs[:, 1] if num_classes == 2 else probs


def stage_metrics(num_classes: int, head_size: int, with_auroc: bool) -> MetricCollection:
    """Accuracy over the head's arg-max (and AUROC over the task classes) for one stage."""
    metrics: dict[str, nn.Module] = {"acc": MulticlassAccuracy(num_classes=head_size, average="micro")}
    if with_auroc:
        metrics["auroc"] = BinaryAUROC() if num_classes == 2 else MulticlassAUROC(num_classes=num_classes)
    return MetricCollection(metrics)


def channels_last_on_cuda(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` with its 4-D weights in channels-last memory format when ``device`` is CUDA; as it is elsewhere.

    The parameters stay the same objects with the same values (only their storage order changes),
    so an optimizer built before keeps working. cuDNN may then pick other kernels: GPU results are
    not bitwise those of the NCHW layout (GPU training is not bitwise reproducible either way).
    """
    if torch.device(device).type == "cuda":
        module.to(memory_format=torch.channels_last)
    return module


class ImageClassifier(pl.LightningModule):
    """An image classifier from the architecture registry.

    Args:
        arch: registry name (``resnet18 resnet34 resnet50 vgg13 vgg16 vgg19``) or any timm model.
        in_chans: input channels (linked from the data module by ``lightning-dims fit``).
        num_classes: classes of the task (linked from the data module); labels are 0..num_classes-1.
        lr: Adam learning rate; None takes the paper's rate for the architecture
            (:func:`~lightning_dims.models.presets.paper_learning_rate`; ``lightning-dims fit``'s
            ``paper`` preset also applies the VGG-on-SVHN exception).
        weight_decay: Adam's (L2) weight decay; paper 1e-4.
        pretrained: start from ImageNet weights (downloaded on first use) instead of random init.
        head_size: logits of the head; None means ``num_classes``; 1000 reproduces the authors' code,
            which kept ImageNet's head for binary tasks.

    The network is ``self.model`` (forward hooks address its layers by ``get_submodule`` names,
    e.g. ``layer4``, ``classifier.3``); ``self.feature_layer`` is the paper's penultimate layer.
    """

    def __init__(
        self,
        arch: str = "resnet18",
        in_chans: int = 1,
        num_classes: int = 2,
        lr: float | None = None,
        weight_decay: float = 1e-4,
        pretrained: bool = False,
        head_size: int | None = None,
    ) -> None:
        super().__init__()
        arch_spec(arch)  # unknown names fail here, with the list of known ones
        if num_classes < 2:
            raise ValueError(f"model.num_classes must be >= 2 for classification, got {num_classes}")
        if head_size is not None and head_size < num_classes:
            raise ValueError(f"model.head_size ({head_size}) must be >= model.num_classes ({num_classes})")
        if lr is not None and lr <= 0:
            raise ValueError(f"model.lr must be > 0, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"model.weight_decay must be >= 0, got {weight_decay}")
        self.save_hyperparameters()
        self.lr = paper_learning_rate(arch) if lr is None else float(lr)
        self.head_size = num_classes if head_size is None else head_size
        self.model = create_model(arch, in_chans=in_chans, num_classes=self.head_size, pretrained=pretrained)
        self.feature_layer = feature_layer(arch, self.model)
        self.test_prefix = "test"  # metric prefix of test evaluations: "test_best" when testing the best-val weights
        # ModuleDict keys may not shadow nn.Module attributes such as ``train``: suffix them.
        self.losses = nn.ModuleDict({f"{stage}_": MeanMetric() for stage in STAGES})
        self.metrics = nn.ModuleDict(
            {f"{stage}_": stage_metrics(num_classes, self.head_size, with_auroc=stage != "train") for stage in STAGES}
        )

    @override
    def setup(self, stage: str) -> None:
        """On CUDA, channels-last weights, matching the data module's channels-last batches (faster cuDNN convolutions)."""
        channels_last_on_cuda(self, self.trainer.strategy.root_device)

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, head_size) of images ``x`` (B, in_chans, H, W)."""
        return self.model(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits.float(), y)
        stage_loss, metrics = self.losses[f"{stage}_"], self.metrics[f"{stage}_"]
        stage_loss.update(loss.detach(), weight=y.shape[0])
        for name, metric in metrics.items():
            metric.update(task_probabilities(logits, self.hparams.num_classes) if name == "auroc" else logits, y)
        prefix = self.test_prefix if stage == "test" else stage
        self.log(split_metric(prefix, "loss"), stage_loss, on_step=False, on_epoch=True, prog_bar=stage != "train")
        for name, metric in metrics.items():
            self.log(split_metric(prefix, name), metric, on_step=False, on_epoch=True, prog_bar=name == "acc")
        return loss

    @override
    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train")
        self.log(split_metric("train", "loss_step"), loss.detach(), on_step=True, on_epoch=False, prog_bar=True)
        return loss

    @override
    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    @override
    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test")

    @override
    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam with L2 weight decay, as in the paper."""
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.hparams.weight_decay)
