"""BatchNormRecalibration: running statistics equal the training set's, the RNG stream is untouched, eval = trained."""

import torch
from torch import nn

from lightning_dims.callbacks import BatchNormRecalibration
from tests.helpers.tiny_lightning import LitClassifier, TensorDataModule, digits_tensors, quiet_trainer


class BatchNormNet(nn.Module):
    """conv -> BatchNorm -> ReLU -> pool -> fc on 8x8 inputs in 0..255 (no input scaling, like the paper)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))

    def forward(self, x):
        return self.head(self.bn(self.conv(x)))


def fit_two_epochs(callbacks):
    torch.manual_seed(0)
    x, y = digits_tensors(classes=(3, 8))
    datamodule = TensorDataModule(x, y, train=64, val=64, test=64, batch_size=16)
    module = LitClassifier(BatchNormNet(), lr=1e-2)
    quiet_trainer(max_epochs=2, callbacks=callbacks).fit(module, datamodule=datamodule)
    return module, datamodule


def test_running_statistics_are_those_of_the_training_set():
    callback = BatchNormRecalibration()
    module, datamodule = fit_two_epochs([callback])
    x = datamodule.datasets["train"].tensors[0]
    with torch.no_grad():
        conv = module.model.conv(x)  # (64, 8, 8, 8): all 64 training images fit in one recalibration batch
    per_channel = conv.transpose(0, 1).reshape(8, -1)
    assert torch.allclose(module.model.bn.running_mean, per_channel.mean(dim=1), rtol=1e-5, atol=1e-4)
    assert torch.allclose(module.model.bn.running_var, per_channel.var(dim=1, unbiased=True), rtol=1e-4)
    assert callback.passes == 2 and callback.images == 64  # once per epoch; the end of training adds none
    assert callback.results_record_fields() == {"batchnorm_recalibration": {"passes": 2, "images": 64}}


def test_without_recalibration_the_running_statistics_lag_and_the_weights_are_the_same():
    plain, _ = fit_two_epochs([])
    recalibrated, datamodule = fit_two_epochs([BatchNormRecalibration()])
    for name, weight in plain.model.state_dict().items():  # the pass changes no weight and no random draw
        if "running" not in name and "num_batches" not in name:
            assert torch.equal(weight, recalibrated.model.state_dict()[name]), name
    x = datamodule.datasets["train"].tensors[0]
    with torch.no_grad():
        true_mean = plain.model.conv(x).transpose(0, 1).reshape(8, -1).mean(dim=1)
    lag = (plain.model.bn.running_mean - true_mean).abs().max() / true_mean.abs().max()
    assert lag > 0.1  # 8 steps of momentum 0.1 keep much of the initial zero mean: what the callback fixes
    assert torch.allclose(recalibrated.model.bn.running_mean, true_mean, rtol=1e-5, atol=1e-4)
