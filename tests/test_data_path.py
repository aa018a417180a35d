"""The device-resident data path: images decoded and preprocessed once, batches gathered by index.

Checked against the per-batch path it replaced (read every batch's files and preprocess them in
the loader's collate function, in the order of the same sampler): the same tensors bit for bit,
so the same K_F and d_data; each epoch's order a function of (seed, epoch) only; DDP shares
disjoint; no file read during an epoch; parallel decoding identical to serial.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lightning.pytorch.utilities.data import _update_dataloader
from PIL import Image
from torch.utils.data import DistributedSampler

from lightning_dims.data import DatasetTask, DimsDataModule
from lightning_dims.data.datamodule import EpochShuffleSampler, ResidentSplit
from lightning_dims.data.decode import load_split, preprocess_images
from lightning_dims.models.classifier import channels_last_on_cuda
from lightning_dims.properties import intrinsic_dimension, label_sharpness
from lightning_dims.seeds import epoch_seed


def png_folder(root, rng, counts: dict[str, int], shapes=((30, 26), (19, 33))):
    """Class sub-folders of 8-bit gray PNGs of two native sizes (the resize has real work to do)."""
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for index in range(count):
            shape = shapes[index % len(shapes)]
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(root / name / f"{index:03d}.png")
    return root


def per_batch_epoch(datamodule: DimsDataModule, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One training epoch through the path this replaced: read each batch's images from the pool and
    preprocess them together (``SplitImages`` + ``PreprocessBatch`` collate), in the sampler's order."""
    task = datamodule.task
    pool, indices, labels = task.pool(), task.indices("train"), task.labels("train")
    generator = torch.Generator().manual_seed(epoch_seed(datamodule.seed, epoch))
    order = torch.randperm(len(indices), generator=generator).tolist()
    batches = []
    for start in range(0, len(order), datamodule.batch_size):
        items = order[start : start + datamodule.batch_size]
        images = preprocess_images(pool.read(indices[items]), task.spec)
        batches.append((images, labels[items]))
    return batches


def resident_epoch(datamodule: DimsDataModule, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader = datamodule.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return list(loader)


@pytest.fixture
def folder_module(tmp_path, rng):
    root = png_folder(tmp_path / "scans", rng, {"normal": 24, "lesion": 24})
    return DimsDataModule(name="folder", data_root=str(root), train_size=30, val_size=6, test_size=10, size=20, batch_size=7)


@pytest.mark.parametrize("source", ["digits", "png-folder"])
def test_batches_are_bit_identical_to_the_per_batch_path_with_the_same_kf_and_d_data(source, folder_module):
    if source == "digits":
        datamodule = DimsDataModule(name="digits", classes=[3, 8], train_size=60, val_size=10, test_size=20, size=20, batch_size=16)
    else:
        datamodule = folder_module
    datamodule.setup("fit")
    for epoch in (0, 3):
        old, new = per_batch_epoch(datamodule, epoch), resident_epoch(datamodule, epoch)
        assert len(old) == len(new) == -(-datamodule.hparams.train_size // datamodule.batch_size)
        for (old_x, old_y), (new_x, new_y) in zip(old, new):
            assert new_x.dtype == torch.float32 and torch.equal(old_x, new_x) and torch.equal(old_y, new_y)

    # the whole training set in index order, as K_F / d_data see it
    task = datamodule.task
    before = preprocess_images(task.pool().read(task.indices("train")), task.spec)
    after = datamodule.resident("train").images
    assert torch.equal(before, after)
    labels = task.labels("train")
    assert label_sharpness(after, labels, m=1000).value == label_sharpness(before, labels, m=1000).value
    k = 5
    assert intrinsic_dimension(after, "mle", k=k).dimension == intrinsic_dimension(before, "mle", k=k).dimension


def test_no_image_is_read_during_an_epoch(folder_module, monkeypatch):
    folder_module.setup("fit")
    assert folder_module.in_chans == 1  # (its first file was read to tell)
    pool = folder_module.task.pool()
    reads = []
    original = pool.read
    monkeypatch.setattr(pool, "read", lambda indices: reads.append(len(indices)) or original(indices))
    resident_epoch(folder_module, 0)  # the first loader reads the split once
    assert sum(reads) == 30 and max(reads) <= 32  # in chunks, for the decoding threads
    reads.clear()
    for epoch in range(1, 4):
        resident_epoch(folder_module, epoch)
        list(folder_module.val_dataloader())
    assert reads == [6]  # the validation split, read once on first use; nothing in any epoch


def test_epoch_order_is_a_function_of_seed_and_epoch_and_ddp_shares_are_disjoint():
    def module():
        datamodule = DimsDataModule(name="digits", classes=[3, 8], train_size=40, val_size=0, test_size=10, size=8, batch_size=6, seed=4)
        datamodule.setup("fit")
        return datamodule

    first, second = module(), module()
    second_epoch_2 = resident_epoch(second, 2)  # a fresh process resuming at epoch 2 sees epoch 2's order
    resident_epoch(first, 0), resident_epoch(first, 1)
    first_epoch_2 = resident_epoch(first, 2)
    assert all(torch.equal(a[1], b[1]) and torch.equal(a[0], b[0]) for a, b in zip(first_epoch_2, second_epoch_2))
    assert not all(torch.equal(a[1], b[1]) for a, b in zip(resident_epoch(first, 0), first_epoch_2))

    # under DDP Lightning swaps the RandomSampler for a DistributedSampler: each rank gathers a disjoint share
    loader = first.train_dataloader()
    assert isinstance(loader.sampler, EpochShuffleSampler) and isinstance(loader.sampler, torch.utils.data.RandomSampler)
    dataset = loader.dataset
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=4)
        sampler.set_epoch(1)
        distributed = _update_dataloader(loader, sampler)
        share = torch.cat([x.flatten(1) for x, _ in distributed])
        assert len(share) == 20
        seen.append({tuple(row.tolist()) for row in share})
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == {tuple(row.tolist()) for row in dataset.images.flatten(1)}


def test_parallel_decoding_is_identical_to_serial_and_shows_progress(tmp_path, rng, capsys):
    root = png_folder(tmp_path / "scans", rng, {"a": 50, "b": 50})
    task = DatasetTask("folder", data_root=root, train_size=80, val_size=0, test_size=10, size=16)
    pool, indices = task.pool(), task.setup().indices("train")
    serial = load_split(pool, indices, task.spec, threads=1)
    parallel = load_split(pool, indices, task.spec, threads=4, progress=True, desc="scans train")
    assert torch.equal(serial, parallel) and parallel.shape == (80, 1, 16, 16)
    assert torch.equal(serial, preprocess_images(pool.read(indices), task.spec))
    err = capsys.readouterr().err
    assert "scans train" in err and "80/80" in err
    assert task.images("train") is task.images("train")  # read once, then kept


def test_gathers_keep_channels_last_and_cuda_models_get_channels_last_weights():
    images = torch.arange(5 * 3 * 4 * 4, dtype=torch.float32).reshape(5, 3, 4, 4)
    split = ResidentSplit(images.contiguous(memory_format=torch.channels_last), torch.arange(5))
    x, y = split.__getitems__([4, 0, 2])
    assert x.is_contiguous(memory_format=torch.channels_last) and torch.equal(x, images[[4, 0, 2]])
    assert y.tolist() == [4, 0, 2]

    conv = torch.nn.Conv2d(3, 4, 3)
    weight = conv.weight
    channels_last_on_cuda(conv, torch.device("cpu"))
    assert conv.weight.is_contiguous() and not conv.weight.is_contiguous(memory_format=torch.channels_last)
    channels_last_on_cuda(conv, torch.device("cuda"))  # only the memory format changes: no device move here
    assert conv.weight is weight and conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert conv.weight.device.type == "cpu"
