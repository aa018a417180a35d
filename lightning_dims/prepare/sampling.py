"""The per-class random draw (the authors' "10,000 per class"), with refused files replaced.

Each class's candidates are put in one seeded random order; the draw is the shortest prefix of that
order holding ``n`` usable images. Because the order is fixed by the seed, the draw is the same
whether the prepare runs at once, in parallel or resumed, and a refused (unreadable) file is
replaced by the next one in the order instead of leaving the class short. This equals drawing
``n`` at random from the usable files, which is what the authors' ``random.sample`` over their
extracted images did (their draw was unseeded).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from lightning_dims.prepare.tasks import Task

__all__ = ["class_orders", "draw"]


def class_orders(tasks: list[Task], seed: int) -> dict[int, list[Task]]:
    """label -> that class's tasks in one seeded random order (tasks without a label are dropped)."""
    rng = np.random.default_rng(seed)
    orders = {}
    for label in sorted({task.label for task in tasks if task.label is not None}):
        members = [task for task in tasks if task.label == label]
        orders[label] = [members[i] for i in rng.permutation(len(members))]
    return orders


def draw(orders: dict[int, list[Task]], per_class: int, outcome: Callable[[str], bool | None]) -> list[Task]:
    """The tasks of the current draw: per class, usable or not-yet-run tasks until ``per_class`` of them.

    ``outcome(key)`` is True (done, usable), False (refused) or None (not run yet). Refused tasks are
    passed over (they are reported elsewhere); when the returned list holds no not-yet-run task,
    the draw is final.
    """
    chosen = []
    for order in orders.values():
        taken = 0
        for task in order:
            if taken == per_class:
                break
            if outcome(task.key) is not False:
                chosen.append(task)
                taken += 1
    return chosen
