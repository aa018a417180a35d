"""One training run's identity, folder, claim, attempts and lifecycle (its W&B run: :mod:`lightning_dims.tracking`).

Every ``lightning-dims fit`` run owns one folder ``<run_dir>/<run_id>/`` holding its
``config.yaml`` (the parsed CLI config), its checkpoints (``last.ckpt`` every epoch and the
best-val one), ``wandb/`` (the W&B run files), the attempt journal, the claim while a process is
working on it, and, unless ``--results_dir`` says otherwise, its results record: the layout is
:mod:`~lightning_dims.runs.folder`'s.

Modules (import what you need; this package imports nothing heavy itself):

* :mod:`~lightning_dims.runs.folder`: the folder's layout, its state, the refusals and the resume check;
* :mod:`~lightning_dims.runs.identity`: run ids, the canonical config and its ``config_hash``;
* :mod:`~lightning_dims.runs.claims`: the exactly-once claim with a heartbeat;
* :mod:`~lightning_dims.runs.attempts`: the attempt journal;
* :mod:`~lightning_dims.runs.reproducibility`: per-epoch seeding and the checkpoint stamp;
* :mod:`~lightning_dims.runs.config_files`: the per-run config file;
* :mod:`~lightning_dims.runs.lifecycle`: status, record, attempt and W&B on every exit path.
"""

__all__: list[str] = []  # a namespace of modules: import what you need from them
