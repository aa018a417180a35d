"""Weights & Biases experiment tracking: every module of lightning-dims that talks to W&B.

A run's record is built and stored on disk by :mod:`lightning_dims.records`; this package sends
it, and everything else a run shows in W&B, to W&B. It sits above ``records`` and below ``runs``
(whose lifecycle calls it) and the callbacks (which log under its names); it imports none of
them (``docs/architecture.md``). A W&B failure is a warning here, never a failed run.

* :mod:`~lightning_dims.tracking.run`: W&B mode, the run's logger and its fallbacks, the W&B run id;
* :mod:`~lightning_dims.tracking.history`: one W&B history across a run's attempts;
* :mod:`~lightning_dims.tracking.names`: the W&B names of the paper's quantities and the flat config;
* :mod:`~lightning_dims.tracking.summary`: a callback's results as W&B summary values and tables;
* :mod:`~lightning_dims.tracking.results`: the results record saved into the W&B run;
* :mod:`~lightning_dims.tracking.artifacts`: properties, record and checkpoint as W&B artifacts;
* :mod:`~lightning_dims.tracking.source`: results records read back from W&B runs;
* :mod:`~lightning_dims.tracking.dashboard_spec`: what the dashboards show, as plain data;
* :mod:`~lightning_dims.tracking.dashboards`: that spec as a W&B workspace and report;
* :mod:`~lightning_dims.tracking.sweeps`: a sweep's configuration from the server, and W&B's agent.

Private W&B and Lightning APIs are reached through :mod:`lightning_dims.compat` only. Imports of
``wandb`` are inside the functions, so importing this package does not load W&B.
"""

__all__: list[str] = []  # a namespace of modules: import what you need from them
