from pathlib import Path

import numpy as np
import paddle
import pytest
from PIL import Image

from supernet.data import (IMAGENET_MEAN, IMAGENET_STD, ArrayLoader, DataError, DatasetBatches, ImageDataset,
                           as_float32, build_loaders, find_fmnist, imagenet_samples, load_fmnist, read_idx)


def test_tiny_fmnist_loads(tiny_fmnist):
    x, y = load_fmnist("train", tiny_fmnist)
    assert x.shape == (96, 1, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
    tr, te = build_loaders("fmnist", 16, data_dir=str(tiny_fmnist))
    xb, yb = next(tr.epoch(0))
    assert xb.shape == (16, 1, 28, 28) and xb.dtype == np.float32
    assert len(tr) == 6 and len(te) == 3  # train drops the last partial batch, eval keeps it


def test_missing_or_truncated_idx(tiny_fmnist, tmp_path):
    with pytest.raises(DataError, match="does not hold"):
        find_fmnist(tmp_path)
    bad = tmp_path / "bad.idx"
    bad.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28]) + b"\0" * 100)
    with pytest.raises(DataError, match="truncated"):
        read_idx(bad)


def test_array_loader_is_reproducible_and_resumable():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 1, 8, 8)).astype(np.float32)
    y = np.arange(50)
    a = ArrayLoader(x, y, 8, train=True, seed=3)
    full = list(a.epoch(2))
    again = list(a.epoch(2))
    tail = list(a.epoch(2, start=3))
    assert all(np.array_equal(p[0], q[0]) for p, q in zip(full, again))
    assert all(np.array_equal(p[0], q[0]) and np.array_equal(p[1], q[1]) for p, q in zip(full[3:], tail))
    assert not np.array_equal(full[0][1], list(a.epoch(3))[0][1])  # another epoch, another order


def test_array_loader_shards_ranks_disjointly():
    x = np.zeros((40, 1, 4, 4), np.float32)
    y = np.arange(40)
    r0 = [b[1] for b in ArrayLoader(x, y, 5, True, seed=1, rank=0, world=2).epoch(0)]
    r1 = [b[1] for b in ArrayLoader(x, y, 5, True, seed=1, rank=1, world=2).epoch(0)]
    assert len(r0) == len(r1) == 4
    seen = np.concatenate(r0 + r1)
    assert sorted(seen.tolist()) == list(range(40))


def test_augmentation_crops_and_flips():
    x = np.arange(2 * 1 * 6 * 6, dtype=np.float32).reshape(2, 1, 6, 6)
    out = ArrayLoader(x, np.zeros(2), 2, True, pad=2, pad_value=-1.0)._augment(x, np.random.default_rng(0))
    assert out.shape == x.shape
    # every output is a shifted (and maybe flipped) window of the padded image: values come from x or padding
    assert set(np.unique(out)) <= set(np.unique(x)) | {-1.0}


def _imagefolder(root, classes=("a", "b"), n=3, corrupt=1):
    for c in classes:
        (root / "train" / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((40, 50, 3), i * 40, np.uint8)).save(root / "train" / c / f"{i}.jpg")
        for i in range(corrupt):
            (root / "train" / c / f"bad{i}.jpg").write_bytes(b"not a jpeg")


def test_imagenet_folder_skips_corrupt_images(tmp_path):
    _imagefolder(tmp_path)
    samples = imagenet_samples(tmp_path, "train")
    assert len(samples) == 8 and {l for _, l in samples} == {0, 1}
    ds = ImageDataset(samples, train=False, size=32)
    batches = DatasetBatches(ds, 4, train=False, num_workers=0)
    got = list(batches.epoch(0))
    assert sum(len(b[1]) for b in got) == 6
    assert batches.skipped == 2
    assert list(got[0][0].shape[1:]) == [3, 32, 32]


def test_imagenet_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        imagenet_samples(tmp_path / "missing", "train")
    _imagefolder(tmp_path)
    (tmp_path / "train" / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        imagenet_samples(tmp_path, "train")


def test_list_file(tmp_path):
    _imagefolder(tmp_path, corrupt=0)
    (tmp_path / "val_list.txt").write_text("train/a/0.jpg 0\ntrain/b/1.jpg 1\n")
    assert [l for _, l in imagenet_samples(tmp_path, "val")] == [0, 1]
    (tmp_path / "bad_list.txt").write_text("train/a/0.jpg zero\n")
    with pytest.raises(DataError, match="expected 'path label'"):
        imagenet_samples(tmp_path, "val", tmp_path / "bad_list.txt")


def _odd_images(root):
    """A class folder of images a real ImageNet copy has: RGB JPEG, grayscale, CMYK, a PNG named .JPEG,
    a truncated JPEG and a file that is not an image."""
    d = root / "train" / "n01"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))
    rgb.save(d / "rgb.JPEG")
    rgb.convert("L").save(d / "gray.JPEG")
    rgb.convert("CMYK").save(d / "cmyk.JPEG")
    rgb.save(d / "png.JPEG", format="PNG")
    full = (d / "rgb.JPEG").read_bytes()
    (d / "truncated.JPEG").write_bytes(full[: len(full) // 3])
    (d / "text.JPEG").write_bytes(b"not an image")
    return d


def test_odd_images_decode_and_bad_ones_are_replaced_in_training(tmp_path):
    _odd_images(tmp_path)
    samples = imagenet_samples(tmp_path, "train")
    ds = ImageDataset(samples, train=True, size=32, seed=0)
    flags = {Path(samples[i][0]).name: int(ds[(i, 0)][2]) for i in range(len(samples))}
    assert flags["rgb.JPEG"] == flags["gray.JPEG"] == flags["cmyk.JPEG"] == flags["png.JPEG"] == 0
    assert flags["text.JPEG"] == 1  # replaced by the next decodable image
    img = ds[(0, 0)][0]
    assert img.dtype == np.uint8 and img.shape == (3, 32, 32)
    for workers in (0, 2):  # every training batch keeps its size (ranks stay in step); replacements counted
        batches = DatasetBatches(ds, 3, train=True, num_workers=workers)
        got = list(batches.epoch(0))
        assert [len(y) for _, y in got] == [3, 3] and batches.skipped >= 1


def test_augmentation_replays_exactly_on_resume_whatever_the_workers(tmp_path):
    _imagefolder(tmp_path, n=6, corrupt=0)
    ds = ImageDataset(imagenet_samples(tmp_path, "train"), train=True, size=24, seed=3)
    full = [x.numpy() for x, _ in DatasetBatches(ds, 4, train=True, num_workers=0).epoch(1)]
    resumed = [x.numpy() for x, _ in DatasetBatches(ds, 4, train=True, num_workers=2).epoch(1, start=1)]
    assert len(full) == 3 and all(np.array_equal(a, b) for a, b in zip(full[1:], resumed))
    other_epoch = [x.numpy() for x, _ in DatasetBatches(ds, 4, train=True, num_workers=0).epoch(2)]
    assert not all(np.array_equal(a, b) for a, b in zip(full, other_epoch))


def test_a_filesystem_error_stops_the_run_naming_the_file(tmp_path):
    _imagefolder(tmp_path, corrupt=0)
    (tmp_path / "train" / "a" / "dir.jpg").mkdir()  # open() fails: an I/O error, not a bad image
    ds = ImageDataset(imagenet_samples(tmp_path, "train"), train=True, size=24)
    for workers in (0, 2):
        with pytest.raises(DataError, match="cannot read .*dir.jpg"):
            list(DatasetBatches(ds, 2, train=True, num_workers=workers).epoch(0))


def test_uint8_batches_are_normalised_like_the_float_pipeline():
    x = np.random.default_rng(0).integers(0, 256, (2, 3, 4, 4)).astype(np.uint8)
    want = (x.astype(np.float32) / 255 - np.array(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)) \
        / np.array(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(as_float32(x), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(as_float32(paddle.to_tensor(x)).numpy(), want, rtol=1e-5, atol=1e-5)
    f = np.zeros((1, 1, 2, 2), np.float32)
    assert as_float32(f) is f
