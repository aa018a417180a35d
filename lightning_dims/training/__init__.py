"""Training one run with Lightning: the ``fit`` command's LightningCLI (:mod:`~lightning_dims.training.fit_cli`)."""
