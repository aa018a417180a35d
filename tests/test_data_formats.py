"""Loaders for datasets too large to carry, on tiny files the tests write in the real formats."""

import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from lightning_dims.cli import main
from lightning_dims.data import DatasetTask, DimsDataModule, MissingDatasetError
from tests.helpers.reference_properties import brute_force_properties


def write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_cifar10_python_pickle_batches(tmp_path, rng):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    labels = {}
    for batch in range(1, 6):
        data = rng.integers(0, 256, (40, 3072), dtype=np.uint8)
        labels[batch] = rng.integers(0, 10, 40).tolist()
        with open(folder / f"data_batch_{batch}", "wb") as stream:
            pickle.dump({"data": data, "labels": labels[batch]}, stream)
    with open(folder / "batches.meta", "wb") as stream:
        pickle.dump({"label_names": [f"class{c}" for c in range(10)]}, stream)
    task = DatasetTask("cifar10", classes=None, train_size=10, val_size=0, test_size=0, size=None, data_root=tmp_path, seed=1)
    pool = task.pool()
    assert len(pool) == 200 and pool.labels.tolist() == sum(labels.values(), [])
    assert task.in_chans == 3 and task.num_classes == 2 and len(task.classes) == 2
    assert task.class_names == [f"class{c}" for c in task.classes]
    x = task.images("train")
    assert x.shape == (10, 3, 32, 32)


def test_svhn_mat_file_maps_label_10_to_digit_0(tmp_path, rng):
    from scipy.io import savemat

    (tmp_path / "svhn").mkdir()
    images = rng.integers(0, 256, (32, 32, 3, 50), dtype=np.uint8)
    labels = np.concatenate([np.full(25, 10), np.full(25, 4)])[:, None]
    savemat(tmp_path / "svhn" / "train_32x32.mat", {"X": images, "y": labels})
    task = DatasetTask("svhn", classes=[0, 4], train_size=20, val_size=0, test_size=10, size=None, data_root=tmp_path)
    pool = task.pool()
    assert sorted(set(pool.labels.tolist())) == [0, 4]
    first = pool.read([0])[0]
    assert first.shape == (3, 32, 32) and torch.equal(first, torch.from_numpy(images[..., 0].transpose(2, 0, 1)).float())


def write_medmnist(path, images, labels_per_split):
    arrays = {}
    start = 0
    for split, labels in labels_per_split.items():
        arrays[f"{split}_images"] = images[start : start + len(labels)]
        arrays[f"{split}_labels"] = labels
        start += len(labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)


def test_medmnist_rgb_multiclass_defaults_to_a_random_pair(tmp_path, rng):
    images = rng.integers(0, 256, (90, 28, 28, 3), dtype=np.uint8)
    labels = rng.integers(0, 7, (90, 1)).astype(np.uint8)
    write_medmnist(tmp_path / "medmnist" / "dermamnist.npz", images, {"train": labels[:60], "val": labels[60:70], "test": labels[70:]})
    task = DatasetTask("dermamnist", train_size=6, val_size=0, test_size=0, size=None, data_root=tmp_path, seed=5)
    assert task.in_chans == 3 and task.num_classes == 2
    assert set(task.pool().labels[task.indices("train")]) == set(task.classes)
    assert task.images("train").shape == (6, 3, 28, 28)


def test_chestmnist_multilabel_becomes_one_finding(tmp_path, rng):
    images = rng.integers(0, 256, (60, 28, 28), dtype=np.uint8)
    multi_hot = rng.integers(0, 2, (60, 14)).astype(np.uint8)
    write_medmnist(tmp_path / "medmnist" / "chestmnist.npz", images, {"train": multi_hot[:40], "val": multi_hot[40:50], "test": multi_hot[50:]})
    task = DatasetTask("chestmnist", train_size=10, val_size=0, test_size=0, size=None, data_root=tmp_path, options={"finding": 7})
    assert np.array_equal(task.pool().labels, multi_hot[:, 7])
    assert task.class_names == ["no pneumothorax", "pneumothorax"]


def test_medmnist_larger_resolution_file(tmp_path, rng):
    images = rng.integers(1, 256, (40, 64, 64), dtype=np.uint8)
    labels = np.repeat([[0], [1]], 20, axis=0).astype(np.uint8)
    write_medmnist(tmp_path / "medmnist" / "breastmnist_64.npz", images, {"train": labels[:30], "val": labels[30:35], "test": labels[35:]})
    task = DatasetTask("breastmnist", train_size=10, val_size=0, test_size=0, size=None, data_root=tmp_path, options={"resolution": 64})
    assert task.images("train").shape == (10, 1, 64, 64)
    with pytest.raises(MissingDatasetError, match="no file breastmnist.npz"):
        DatasetTask("breastmnist", data_root=tmp_path).pool()


def test_medmnist_file_with_an_empty_split_is_one_line_naming_file_and_split(tmp_path, rng, capsys):
    images = rng.integers(1, 256, (40, 28, 28), dtype=np.uint8)
    labels = np.repeat([[0], [1]], 20, axis=0).astype(np.uint8)
    path = tmp_path / "medmnist" / "breastmnist.npz"
    write_medmnist(path, images, {"train": labels, "val": labels[:0], "test": labels[:0]})
    assert main(["measure", "--dataset", "breastmnist", "--data-root", str(tmp_path), "--n", "20"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{path}: the val split is empty (val_images (0, 28, 28), val_labels (0, 1))" in err[0], err


def test_imagenet_wnid_folders_give_class_ids_in_sorted_order(tmp_path, rng):
    train = tmp_path / "imagenet" / "train"
    wnids = [f"n{index:08d}" for index in range(1000)]
    for wnid in wnids:
        (train / wnid).mkdir(parents=True)
    for wnid in (wnids[7], wnids[901]):
        for index in range(6):
            write_png(train / wnid / f"{wnid}_{index}.JPEG", rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    task = DatasetTask("imagenet", classes=[901, 7], train_size=6, val_size=2, test_size=4, size=16, data_root=tmp_path)
    assert sorted(set(task.pool().labels.tolist())) == [7, 901]
    assert task.class_names == [wnids[901], wnids[7]]
    assert task.images("test").shape == (4, 3, 16, 16)
    assert np.bincount(task.labels("train").numpy()).tolist() == [3, 3]


def make_class_folders(root, rng, counts, size=(12, 10)):
    for name, count in counts.items():
        for index in range(count):
            write_png(root / name / f"img{index}.png", rng.integers(0, 256, size, dtype=np.uint8))


def test_folder_dataset_end_to_end(tmp_path, rng):
    make_class_folders(tmp_path / "xrays", rng, {"normal": 30, "pneumonia": 30})
    dm = DimsDataModule(name="folder", data_root=str(tmp_path / "xrays"), train_size=20, val_size=10, test_size=20, size=24, batch_size=5)
    assert dm.num_classes == 2 and dm.in_chans == 1 and dm.domain == "generic"
    dm.setup("fit")
    assert dm.class_names == ["normal", "pneumonia"]
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (5, 1, 24, 24) and y.dtype == torch.int64
    properties = dm.dataset_properties(k=5)
    assert properties.n == 20 and properties.cached is False
    k_f, d_data = brute_force_properties(*dm.split_tensors("train"), k=5)
    assert properties.label_sharpness == pytest.approx(k_f, rel=1e-6) and properties.d_data == pytest.approx(d_data, rel=1e-6)
    assert dm.dataset_properties(k=5).cached is True


def test_folder_with_sixteen_bit_pngs_keeps_their_depth(tmp_path):
    for name, value in (("a", 1000), ("b", 40000)):
        for index in range(3):
            path = tmp_path / name / f"{index}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((8, 8), value + index, dtype=np.uint16)).save(path)
    task = DatasetTask("folder", data_root=tmp_path, train_size=4, val_size=0, test_size=2, intensity="raw", size=None)
    raw = task.pool().read(task.indices("train"))
    assert {float(image.max()) for image in raw} <= {1000.0, 1001.0, 1002.0, 40000.0, 40001.0, 40002.0}
    assert max(float(image.max()) for image in raw) > 255


def test_csv_manifest_with_patients_end_to_end(tmp_path, rng, capsys):
    rows = ["path,label,patient_id"]
    for patient in range(40):
        for image in range(4):
            label = "effusion" if (patient + image) % 2 else "clear"
            relative = f"images/p{patient}_{image}.png"
            write_png(tmp_path / relative, rng.integers(0, 256, (16, 16), dtype=np.uint8))
            rows.append(f"{relative},{label},P{patient:03d}")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    task = DatasetTask("csv", data_root=tmp_path / "manifest.csv", train_size=40, val_size=10, test_size=30, size=16)
    assert task.class_names == ["clear", "effusion"]
    patients = task.pool().groups
    owners = {split: set(patients[task.indices(split)]) for split in ("train", "val", "test")}
    assert not owners["train"] & owners["test"] and not owners["train"] & owners["val"] and not owners["val"] & owners["test"]
    assert np.bincount(task.labels("test").numpy()).tolist() == [15, 15]
    x = task.images("train")
    assert x.shape == (40, 1, 16, 16)
    arguments = ["--dataset", "csv", "--data-root", str(tmp_path / "manifest.csv"), "--n", "40", "--val-size", "10"]
    assert main(["measure", *arguments, "--test-size", "30", "--img-size", "16", "--k", "5", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["n"] == 40 and record["class_names"] == ["clear", "effusion"] and record["label_sharpness"] > 0
    assert record["fingerprint"] == task.property_fingerprint(1000, 5, "mle", "exhaustive")


def test_csv_manifest_with_missing_files_names_them(tmp_path):
    (tmp_path / "manifest.csv").write_text("path,label\nnope.png,0\nalso.png,1\n")
    with pytest.raises(ValueError, match="2 of 2 files listed .* do not exist"):
        DatasetTask("csv", data_root=tmp_path).pool()


def test_radiology_manifest_applies_the_paper_rule_to_the_raw_column(tmp_path, rng):
    folder = tmp_path / "oai"
    rows = ["path,kl_grade,patient_id"]
    grades = [0, 1, 2, 3, 4] * 8
    for index, grade in enumerate(grades):
        write_png(folder / f"knee{index}.png", rng.integers(0, 256, (10, 10), dtype=np.uint8))
        rows.append(f"knee{index}.png,{grade},{index // 2}")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    task = DatasetTask("oai", data_root=tmp_path, train_size=10, val_size=0, test_size=6, size=None)
    assert task.pool().labels.tolist() == [int(grade >= 2) for grade in grades]
    assert task.class_names == ["KL < 2", "KL >= 2"] and task.domain == "medical"


def test_chexpert_native_csv_drops_uncertain_and_groups_patients(tmp_path, rng):
    folder = tmp_path / "chexpert"
    rows = ["Path,Sex,Pleural Effusion"]
    values = ["1.0", "0.0", "", "-1.0"] * 6
    for index, value in enumerate(values):
        relative = f"CheXpert-v1.0-small/train/patient{index // 3:05d}/study1/view1_frontal.jpg"
        write_png(folder / relative, rng.integers(0, 256, (10, 10), dtype=np.uint8))
        rows.append(f"{relative},Female,{value}")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    pool = DatasetTask("chexpert", data_root=tmp_path).pool()
    assert pool.labels.tolist() == [1, 0, 0] * 6  # the six uncertain rows are gone
    assert pool.groups[0] == "patient00000" and len(set(pool.groups)) == 8


def test_mura_label_comes_from_the_study_folder(tmp_path, rng):
    folder = tmp_path / "mura"
    rows = ["path"]
    for index in range(8):
        outcome = "positive" if index % 2 else "negative"
        relative = f"MURA-v1.1/train/XR_WRIST/patient{index:05d}/study1_{outcome}/image1.png"
        write_png(folder / relative, rng.integers(0, 256, (10, 10), dtype=np.uint8))
        rows.append(relative)
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    pool = DatasetTask("mura", data_root=tmp_path).pool()
    assert pool.labels.tolist() == [0, 1] * 4 and pool.class_names == ["normal", "abnormal"]


def test_isic_2020_ground_truth_csv_as_is(tmp_path, rng):
    folder = tmp_path / "isic"
    rows = ["image_name,patient_id,sex,target"]
    for index in range(12):
        write_png(folder / "train" / f"ISIC_{index:07d}.jpg", rng.integers(0, 256, (10, 12, 3), dtype=np.uint8))
        rows.append(f"ISIC_{index:07d},IP_{index // 3},male,{index % 2}")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    task = DatasetTask("isic", data_root=tmp_path, train_size=4, val_size=0, test_size=4, size=None)
    assert task.pool().labels.tolist() == [0, 1] * 6 and task.in_chans == 3
    assert task.images("train").shape == (4, 3, 10, 12)
    patients = task.pool().groups
    assert not set(patients[task.indices("train")]) & set(patients[task.indices("test")])


def test_radiology_class_folder_layout(tmp_path, rng):
    make_class_folders(tmp_path / "brats", rng, {"0": 6, "1": 6})
    task = DatasetTask("brats", data_root=tmp_path, train_size=6, val_size=0, test_size=4, size=None)
    assert np.bincount(task.labels("train").numpy()).tolist() == [3, 3]


def test_missing_chexpert_exits_nonzero_naming_the_expected_path(tmp_path, capsys):
    assert main(["measure", "--dataset", "chexpert", "--data-root", str(tmp_path), "--json"]) == 2
    captured = capsys.readouterr()
    message = captured.err
    assert len(message.strip().splitlines()) == 1 and message.startswith("lightning-dims measure: error:")
    assert "'chexpert' not found in " + str(tmp_path / "chexpert") in message
    assert "manifest.csv" in message and "stanfordmlgroup" in message
    assert captured.out == ""


def test_missing_natural_dataset_is_never_replaced_by_other_data(tmp_path):
    with pytest.raises(MissingDatasetError, match=r"'cifar10' not found .*cifar-10-batches-py/\{data_batch_1..5"):
        DatasetTask("cifar10", data_root=tmp_path).setup()
