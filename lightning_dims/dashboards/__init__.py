"""W&B dashboards of the paper's quantities: the spec (:mod:`~lightning_dims.dashboards.spec`, plain data)
and its W&B workspace and report (:mod:`~lightning_dims.dashboards.wandb_views`, ``wandb-workspaces``)."""
