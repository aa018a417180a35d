"""``lightning-dims prepare``: the paper's radiology datasets from their official downloads.

Each dataset module re-implements the authors' extraction (mazurowski-lab/radiologyintrinsicmanifolds,
``data/<name>/``) and registers a :class:`~lightning_dims.prepare.registry.Preparer`; the shared
:mod:`~lightning_dims.prepare.runner` makes every one of them resumable, parallel and explicit
about the files it could not use. The output folder is read by the radiology registry as is
(``--out <root>/<name>``, then ``lightning-dims measure --dataset <name> --data-root <root>``).
"""

from lightning_dims.prepare import brats, chexpert, dbc, mura, oai, prostate, rsna  # noqa: F401  (register the preparers)
from lightning_dims.prepare.registry import (
    PREPARERS,
    Option,
    PrepareError,
    Preparer,
    get_preparer,
)
from lightning_dims.prepare.runner import Summary, prepare

__all__ = ["PREPARERS", "Option", "PrepareError", "Preparer", "Summary", "get_preparer", "prepare"]
