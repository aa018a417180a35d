"""Seeds derived from a run's seed, so every random choice is a function of (seed, where, when)."""

from __future__ import annotations

import numpy as np

__all__ = ["epoch_seed"]


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A 32-bit seed for ``(seed, epoch, stream)``, well mixed (numpy's ``SeedSequence``).

    ``stream`` separates independent uses at the same epoch (0: the training order, 1: the global
    generators that dropout and augmentation draw from).
    """
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(stream)]).generate_state(1)[0])
