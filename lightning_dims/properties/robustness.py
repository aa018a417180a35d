"""Adversarial robustness as numbers (paper.md §2.4): eps names, summed totals to means and penalties.

The pure half of :class:`~lightning_dims.callbacks.AdversarialEvalCallback` and the payload it
contributes to the results record, so the callback, the record and the analysis share one eps key
and one penalty computation.

Per attack and eps, over ``n`` samples (losses are mean cross-entropy in nats per sample,
accuracies fractions in [0, 1]):

* ``loss_penalty = attacked_loss - clean_loss`` (the quantity the paper correlates with K_F);
* ``acc_penalty = clean_acc - attacked_acc``.

``eps`` is kept twice: ``eps`` in intensity units of the preprocessing spec (2.0 for the paper's
2/255 under ``max255``) and ``eps_fraction`` of the intensity range (2/255).
"""

from __future__ import annotations

from fractions import Fraction

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["TOTALS", "AttackMetrics", "eps_key", "parse_eps", "penalties"]

TOTALS = ("n", "clean_loss_sum", "attacked_loss_sum", "clean_correct", "attacked_correct")
"""The per-batch sums an attack accumulates (float64), in this order."""


def parse_eps(value: float | str) -> float:
    """An eps in units of the intensity range: a number, or a fraction string such as ``"2/255"``; in (0, 1]."""
    try:
        eps = float(Fraction(value.replace(" ", ""))) if isinstance(value, str) else float(value)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"eps {value!r} is not a number or a fraction like '2/255'") from None
    if not (0.0 < eps <= 1.0):
        raise ValueError(f"eps {value!r} must be in (0, 1]: it is a fraction of the intensity range (paper: 2/255)")
    return eps


def eps_key(eps: float | str) -> str:
    """The name of an absolute eps (intensity units) in records: ``repr`` of the value at 12 digits.

    2/255 of a [0, 255] range is ``"2.0"``, of a [0, 1] range ``"0.0078431372549"``; ``float(key)``
    gives the value back. Strings are taken as already-made keys and kept as they are.
    """
    if isinstance(eps, str):
        return eps
    return repr(float(f"{float(eps):.12g}"))


def penalties(
    clean_loss: float | None, attacked_loss: float | None, clean_acc: float | None, attacked_acc: float | None
) -> tuple[float | None, float | None]:
    """``(attacked_loss - clean_loss, clean_acc - attacked_acc)``; None where an operand is missing."""
    loss = None if clean_loss is None or attacked_loss is None else attacked_loss - clean_loss
    acc = None if clean_acc is None or attacked_acc is None else clean_acc - attacked_acc
    return loss, acc


class AttackMetrics(BaseModel):
    """One attack at one eps on one split: the payload the robustness callback puts into the record.

    Penalties missing from the input are computed by :func:`penalties`; extra keys are kept.
    """

    model_config = ConfigDict(extra="allow")

    clean_loss: float | None
    clean_acc: float | None
    attacked_loss: float | None
    attacked_acc: float | None
    loss_penalty: float | None = None
    acc_penalty: float | None = None
    n: int | None = None
    eps: float | None = None
    eps_fraction: float | None = None

    @model_validator(mode="after")
    def _fill_penalties(self) -> "AttackMetrics":
        loss, acc = penalties(self.clean_loss, self.attacked_loss, self.clean_acc, self.attacked_acc)
        if self.loss_penalty is None:
            self.loss_penalty = loss
        if self.acc_penalty is None:
            self.acc_penalty = acc
        return self

    def __getitem__(self, name: str):
        """Read access by name as well (``metrics["loss_penalty"]``), as for the record's plain JSON."""
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(name) from None

    @classmethod
    def from_totals(cls, totals, **extra) -> "AttackMetrics":
        """Means and penalties from summed totals (:data:`TOTALS` order, any float sequence or tensor)."""
        values = dict(zip(TOTALS, (float(v) for v in totals)))
        n = values["n"]
        if n <= 0:
            raise ValueError("no samples were attacked: the test set is empty")
        return cls(
            clean_loss=values["clean_loss_sum"] / n,
            attacked_loss=values["attacked_loss_sum"] / n,
            clean_acc=values["clean_correct"] / n,
            attacked_acc=values["attacked_correct"] / n,
            n=int(n),
            **extra,
        )
