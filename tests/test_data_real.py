"""The real dataset copies in $LIGHTNING_DIMS_DATA through the real loaders (torchvision, MedMNIST .npz)."""

import numpy as np
import pytest
import torch

from lightning_dims.data import DATASETS, DatasetTask, DimsDataModule, PreprocessingSpec


def test_mnist_loads_through_torchvision_with_the_requested_pair(shared_data):
    from torchvision.datasets import MNIST

    task = DatasetTask("mnist", classes=[3, 8], train_size=200, val_size=50, test_size=100, size=28, data_root=shared_data)
    pool = task.pool()
    reference = MNIST(root=str(shared_data), train=True, download=False)
    assert len(pool) == 60000 and np.array_equal(pool.labels, reference.targets.numpy())
    train = task.indices("train")
    assert set(pool.labels[train]) == {3, 8}
    assert task.labels("train").tolist() == [0 if pool.labels[i] == 3 else 1 for i in train]
    assert task.class_names == ["3 - three", "8 - eight"]
    # the preprocessed image is the torchvision image scaled to max 255
    image = reference.data[train[0]].float()
    assert torch.allclose(task.images("train")[0, 0], image * 255 / image.max(), atol=1e-4)


def test_fashionmnist_random_pair_is_drawn_from_the_seed(shared_data):
    pairs = [DatasetTask("fashionmnist", seed=seed, data_root=shared_data).classes for seed in range(6)]
    assert all(len(pair) == 2 and pair[0] != pair[1] for pair in pairs)
    assert len({tuple(pair) for pair in pairs}) > 1
    assert DatasetTask("fashionmnist", seed=2, data_root=shared_data).classes == pairs[2]
    task = DatasetTask("fashionmnist", seed=2, train_size=100, val_size=20, test_size=40, size=28, data_root=shared_data)
    assert set(task.pool().labels[task.indices("train")]) == set(pairs[2])


def medmnist_files(shared_data):
    return sorted((shared_data / "medmnist").glob("*.npz"))


def test_every_medmnist_npz_present_loads_through_the_medmnist_path(shared_data):
    files = medmnist_files(shared_data)
    assert files, "no .npz in the shared medmnist folder"
    for path in files:
        name = path.stem
        assert name in DATASETS, f"{name}.npz present but not registered"
        with np.load(path) as archive:
            expected = np.concatenate([archive[f"{s}_labels"][:, 0] for s in ("train", "val", "test")])
        task = DatasetTask(name, train_size=100, val_size=20, test_size=60, size=28, data_root=shared_data)
        pool = task.pool()
        assert np.array_equal(pool.labels, expected)
        assert task.domain == "medical" and task.in_chans == 1 and task.num_classes == 2
        for split, size in (("train", 100), ("val", 20), ("test", 60)):
            assert np.bincount(task.labels(split).numpy(), minlength=2).tolist() == [size // 2, size // 2]


def test_pneumoniamnist_official_splits_option_keeps_medmnist_partition(shared_data):
    task = DatasetTask(
        "pneumoniamnist", train_size=100, val_size=20, test_size=60, size=28, data_root=shared_data,
        options={"official_splits": True},
    )  # fmt: skip
    assert task.indices("test").min() >= 4708 + 524  # pool order: train, val, test
    assert task.indices("train").max() < 4708


def test_datamodule_on_mnist_yields_the_paper_spec(shared_data):
    dm = DimsDataModule(name="mnist", classes=[3, 8], train_size=40, val_size=20, test_size=20, batch_size=8, data_root=str(shared_data))
    assert dm.spec == PreprocessingSpec.paper(channels=1) and dm.in_chans == 1 and dm.num_classes == 2
    dm.prepare_data()
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 1, 224, 224) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.allclose(x.flatten(1).amax(1), torch.full((8,), 255.0))
    assert set(y.tolist()) <= {0, 1}
    every = [set(dm.train_indices), set(dm.val_indices), set(dm.test_indices)]
    assert sum(len(s) for s in every) == len(set().union(*every)) == 80


def test_three_channel_spec_replicates_gray(shared_data):
    task = DatasetTask("mnist", classes=[0, 1], train_size=10, val_size=0, test_size=0, size=32, channels=3, data_root=shared_data)
    x = task.images("train")
    assert x.shape == (10, 3, 32, 32) and torch.equal(x[:, 0], x[:, 2])


@pytest.mark.parametrize("name", ["mnist", "pneumoniamnist"])
def test_same_seed_same_everything(shared_data, name):
    first = DatasetTask(name, train_size=60, val_size=20, test_size=40, size=16, data_root=shared_data, seed=3)
    second = DatasetTask(name, train_size=60, val_size=20, test_size=40, size=16, data_root=shared_data, seed=3)
    assert first.classes == second.classes
    for split in ("train", "val", "test"):
        assert np.array_equal(first.indices(split), second.indices(split))
    assert torch.equal(first.images("train"), second.images("train"))
