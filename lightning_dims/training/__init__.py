"""Training one run with Lightning: the run policy (:mod:`~lightning_dims.training.run`: ``Run``, ``fit(config)``) and the ``fit`` command's LightningCLI (:mod:`~lightning_dims.training.fit_cli`).

:mod:`~lightning_dims.training.argv` normalises its command lines, :mod:`~lightning_dims.training.checkpoints`
holds the checkpoints every run writes, :mod:`~lightning_dims.training.config_parser` resolves
command lines without training.
"""

__all__: list[str] = []  # a namespace of modules: import what you need from them
