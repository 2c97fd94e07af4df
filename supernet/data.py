"""Data: Fashion-MNIST (the proxy) as in-memory arrays, and ImageNet folders / list files.

The proxy keeps the whole set as one normalised float32 array and cuts batches from it, with
augmentation done on the batch (pad-2 random crop + horizontal flip), so no per-sample Python
work sits in the training loop. Batch order and augmentation derive from (seed, epoch, batch), so
a run resumed in the middle of an epoch sees exactly the batches it would have seen.
"""
from __future__ import annotations

import gzip
import logging
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

log = logging.getLogger(__name__)

FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FMNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FMNIST_DEB = "dataset-fashion-mnist"
FMNIST_SUBDIR = "usr/share/datasets/fashion-mnist"
SYSTEM_FMNIST = Path("/") / FMNIST_SUBDIR
CACHE_DIR = Path(os.environ.get("RESNET48_NAS_CACHE", Path.home() / ".cache" / "resnet48-nas"))


class DataError(RuntimeError):
    """A data source is missing, empty or unreadable."""


# --------------------------------------------------------------------------------------------
# Fashion-MNIST


def _has_fmnist(d: Path) -> bool:
    return all(any((d / (f + ext)).is_file() for ext in (".gz", "")) for pair in FMNIST_FILES.values() for f in pair)


def fetch_fmnist(cache_dir: Path = CACHE_DIR) -> Path:
    """Unpack Debian's dataset-fashion-mnist into ``cache_dir`` without root (apt-get download + dpkg-deb)."""
    target = cache_dir / "fashion-mnist"
    if _has_fmnist(target / FMNIST_SUBDIR):
        return target / FMNIST_SUBDIR
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise DataError("Fashion-MNIST not found and apt-get/dpkg-deb are not available to fetch it; "
                        "pass --data_dir with the four IDX files")
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("fetching Fashion-MNIST from the Debian package %s into %s", FMNIST_DEB, target)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        r = subprocess.run(["apt-get", "download", FMNIST_DEB], cwd=tmp, capture_output=True, text=True)
        if r.returncode != 0 and hasattr(os, "geteuid") and os.geteuid() == 0:
            # A fresh machine has no package lists yet: as root, fetch them once and retry.
            log.info("apt-get download failed; running 'apt-get update' once and retrying")
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True)
            r = subprocess.run(["apt-get", "download", FMNIST_DEB], cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob("*.deb"))
        if r.returncode != 0 or not debs:
            raise DataError(f"'apt-get download {FMNIST_DEB}' failed ({r.stderr.strip()[-300:]}); on a fresh "
                            "machine run 'apt-get update' once first, or install it with "
                            f"'apt-get install {FMNIST_DEB}'")
        staging = Path(tmp) / "x"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(staging)], check=True)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    if not _has_fmnist(target / FMNIST_SUBDIR):
        raise DataError(f"the package {FMNIST_DEB} did not hold the Fashion-MNIST IDX files")
    return target / FMNIST_SUBDIR


def find_fmnist(data_dir: str | Path | None = None, download: bool = True) -> Path:
    """The folder with the Fashion-MNIST IDX files: ``data_dir``, the system package, or the cache."""
    if data_dir is not None:
        d = Path(data_dir)
        if not _has_fmnist(d):
            raise DataError(f"{d} does not hold the Fashion-MNIST IDX files "
                            f"({', '.join(f for p in FMNIST_FILES.values() for f in p)}, optionally .gz)")
        return d
    for d in (SYSTEM_FMNIST, CACHE_DIR / "fashion-mnist" / FMNIST_SUBDIR):
        if _has_fmnist(d):
            return d
    if not download:
        raise DataError("Fashion-MNIST not found; install dataset-fashion-mnist or pass --data_dir")
    return fetch_fmnist()


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped), checking its header against its size."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read {path}: {e}") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4: 4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise DataError(f"{path} is truncated: header says {dims}, found {arr.size} bytes")
    return arr.reshape(dims)


def load_fmnist(split: str, data_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N, 1, 28, 28] and labels int64 [N] of the 'train' or 'test' split."""
    d = find_fmnist(data_dir)
    paths = []
    for name in FMNIST_FILES[split]:
        p = d / (name + ".gz")
        paths.append(p if p.is_file() else d / name)
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if len(images) != len(labels):
        raise DataError(f"{paths[0]} has {len(images)} images but {paths[1]} has {len(labels)} labels")
    return images[:, None], labels.astype(np.int64)


def normalise(images: np.ndarray, mean: Sequence[float] | float, std: Sequence[float] | float) -> np.ndarray:
    """uint8 NCHW -> float32 NCHW scaled to [0, 1] and normalised per channel."""
    m = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
    s = np.asarray(std, np.float32).reshape(1, -1, 1, 1)
    return (images.astype(np.float32) / 255.0 - m) / s


def subset(n: int | None, total: int, seed: int) -> np.ndarray:
    """A fixed, seeded choice of ``n`` indices out of ``total`` (all, in order, when n is None)."""
    if n is None or n >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, n, replace=False))


class ArrayLoader:
    """Batches of an in-memory NCHW float32 array, sharded over ranks, reproducible per epoch.

    ``batch_size`` is per rank; a global batch of batch_size * world images is cut from a
    permutation seeded by (seed, epoch) and each rank takes its strided share. Training batches
    get a random crop from ``pad``-pixel padding (with the value a black pixel normalises to) and a
    horizontal flip, drawn from a generator seeded by (seed, epoch, batch).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, train: bool, seed: int = 0,
                 rank: int = 0, world: int = 1, pad: int = 2, flip: bool = True, pad_value: float = 0.0) -> None:
        if len(images) == 0:
            raise DataError("no images to load")
        self.images, self.labels = images, labels
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.rank, self.world = rank, world
        self.pad, self.flip, self.pad_value = pad, flip, pad_value

    def __len__(self) -> int:
        g = self.batch_size * self.world
        n = len(self.images)
        return n // g if self.train and n >= g else -(-n // g)

    def epoch(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (images, labels) numpy batches of ``epoch`` from batch ``start`` on."""
        n, g = len(self.images), self.batch_size * self.world
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.train else np.arange(n)
        for b in range(start, len(self)):
            idx = order[b * g: (b + 1) * g][self.rank:: self.world]
            if len(idx) == 0:
                continue
            x, y = self.images[idx], self.labels[idx]
            if self.train:
                x = self._augment(x, np.random.default_rng([self.seed, epoch, b, 1]))
            yield x, y

    def _augment(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        b, c, h, w = x.shape
        p = self.pad
        if p:
            xp = np.full((b, c, h + 2 * p, w + 2 * p), self.pad_value, dtype=x.dtype)
            xp[:, :, p:p + h, p:p + w] = x
            oy = rng.integers(0, 2 * p + 1, b)
            ox = rng.integers(0, 2 * p + 1, b)
            rows = (oy[:, None] + np.arange(h))[:, None, :, None]
            cols = (ox[:, None] + np.arange(w))[:, None, None, :]
            x = xp[np.arange(b)[:, None, None, None], np.arange(c)[None, :, None, None], rows, cols]
        if self.flip:
            f = rng.random(b) < 0.5
            x = x.copy() if not p else x
            x[f] = x[f, :, :, ::-1]
        return np.ascontiguousarray(x)


def fmnist_loaders(batch_size: int, seed: int = 0, rank: int = 0, world: int = 1,
                   train_images: int | None = None, val_images: int | None = None,
                   data_dir: str | Path | None = None) -> tuple[ArrayLoader, ArrayLoader]:
    """Train and test ArrayLoaders for the proxy (optionally fixed, seeded subsets of each)."""
    xtr, ytr = load_fmnist("train", data_dir)
    xte, yte = load_fmnist("test", data_dir)
    tr, te = subset(train_images, len(xtr), seed), subset(val_images, len(xte), seed + 1)
    pad_value = (0.0 - FMNIST_MEAN) / FMNIST_STD
    train = ArrayLoader(normalise(xtr[tr], FMNIST_MEAN, FMNIST_STD), ytr[tr], batch_size, True, seed, rank, world,
                        pad_value=pad_value)
    test = ArrayLoader(normalise(xte[te], FMNIST_MEAN, FMNIST_STD), yte[te], batch_size, False, seed, rank, world)
    return train, test


# --------------------------------------------------------------------------------------------
# ImageNet: folder layout (train/<class>/*.JPEG) or PaddleClas list files ("path label" lines)

IMG_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def scan_folder(root: Path) -> list[tuple[str, int]]:
    """(path, label) for a folder with one sub-folder per class, labels by sorted class name."""
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{root} has no class sub-folders")
    samples = []
    for label, c in enumerate(classes):
        files = sorted(p for p in (root / c).iterdir() if p.suffix.lower() in IMG_EXTS)
        if not files:
            raise DataError(f"class folder {root / c} holds no images ({'/'.join(IMG_EXTS)})")
        samples += [(str(f), label) for f in files]
    return samples


def read_list(list_file: Path, root: Path) -> list[tuple[str, int]]:
    """PaddleClas list file: one 'relative/path label' per line, paths relative to ``root``."""
    if not list_file.is_file():
        raise DataError(f"list file {list_file} does not exist")
    samples = []
    for n, line in enumerate(list_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DataError(f"{list_file}:{n}: expected 'path label', got {line!r}")
        samples.append((str(root / parts[0]), int(parts[1])))
    if not samples:
        raise DataError(f"list file {list_file} is empty")
    return samples


def imagenet_samples(image_dir: str | Path, split: str, list_file: str | Path | None = None) -> list[tuple[str, int]]:
    root = Path(image_dir)
    if not root.is_dir():
        raise DataError(f"image_dir {root} does not exist")
    if list_file is not None:
        return read_list(Path(list_file), root)
    default_list = root / f"{split}_list.txt"
    if default_list.is_file():
        return read_list(default_list, root)
    return scan_folder(root / split)


class ImageDataset:
    """Decodes images with PIL; a corrupt or unreadable image yields None (dropped by ``collate_skip``)."""

    def __init__(self, samples: list[tuple[str, int]], train: bool, size: int = 224) -> None:
        from paddle.vision import transforms as T  # PIL backend: no OpenCV needed

        self.samples, self.size = samples, size
        if train:
            self.tf = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip()])
        else:
            self.tf = T.Compose([T.Resize(int(size * 256 / 224)), T.CenterCrop(size)])
        self.mean = np.asarray(IMAGENET_MEAN, np.float32).reshape(3, 1, 1) * 255
        self.std = np.asarray(IMAGENET_STD, np.float32).reshape(3, 1, 1) * 255

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        from PIL import Image

        path, label = self.samples[i]
        try:
            with Image.open(path) as im:
                img = self.tf(im.convert("RGB"))
            chw = np.asarray(img, dtype=np.float32).transpose(2, 0, 1)
            return (chw - self.mean) / self.std, np.int64(label)
        except Exception as e:  # corrupt, truncated, unreadable: skip it, counted by the collate
            log.debug("skipping unreadable image %s: %s", path, e)
            return None


def collate_skip(batch: list) -> tuple[np.ndarray, np.ndarray, int]:
    """Stack the good samples; also return how many were skipped as unreadable."""
    good = [b for b in batch if b is not None]
    skipped = len(batch) - len(good)
    if not good:
        return np.zeros((0,)), np.zeros((0,), np.int64), skipped
    return np.stack([g[0] for g in good]), np.array([g[1] for g in good], np.int64), skipped


class DatasetBatches:
    """The ArrayLoader interface over a decoded-image dataset (ImageNet), with workers.

    Same ordering rule as ArrayLoader: a permutation seeded by (seed, epoch), global batches cut
    from it, each rank's strided share, and ``start`` batches skipped without decoding them.
    Unreadable images are dropped from their batch and counted in ``skipped``.
    """

    def __init__(self, dataset: ImageDataset, batch_size: int, train: bool, seed: int = 0, rank: int = 0,
                 world: int = 1, num_workers: int = 4) -> None:
        self.dataset, self.batch_size, self.train, self.seed = dataset, batch_size, train, seed
        self.rank, self.world, self.num_workers = rank, world, num_workers
        self.skipped = 0

    def __len__(self) -> int:
        g, n = self.batch_size * self.world, len(self.dataset)
        return n // g if self.train and n >= g else -(-n // g)

    def epoch(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        import paddle

        n, g = len(self.dataset), self.batch_size * self.world
        order = np.random.default_rng([self.seed, epoch]).permutation(n) if self.train else np.arange(n)
        batches = [order[b * g: (b + 1) * g][self.rank:: self.world].tolist() for b in range(start, len(self))]
        batches = [b for b in batches if b]
        loader = paddle.io.DataLoader(self.dataset, batch_sampler=batches, collate_fn=collate_skip,
                                      num_workers=self.num_workers, return_list=True)
        for x, y, skipped in loader:
            k = int(np.asarray(skipped))
            if k:
                self.skipped += k
                log.warning("skipped %d unreadable images (%d so far)", k, self.skipped)
            if len(y):
                yield x, y


def build_loaders(dataset: str, batch_size: int, seed: int = 0, rank: int = 0, world: int = 1, *,
                  data_dir: str | None = None, image_dir: str | None = None, train_list: str | None = None,
                  val_list: str | None = None, train_images: int | None = None, val_images: int | None = None,
                  num_workers: int = 4, input_size: int = 224):
    """(train, val) batch sources for 'fmnist' or 'imagenet'; ``batch_size`` is per rank."""
    if dataset == "fmnist":
        return fmnist_loaders(batch_size, seed, rank, world, train_images, val_images, data_dir)
    if dataset != "imagenet":
        raise ValueError(f"unknown dataset {dataset!r}; choose 'fmnist' or 'imagenet'")
    if image_dir is None:
        raise DataError("--image_dir is required for dataset 'imagenet'")
    tr = imagenet_samples(image_dir, "train", train_list)
    va = imagenet_samples(image_dir, "val", val_list)
    tr = [tr[i] for i in subset(train_images, len(tr), seed)]
    va = [va[i] for i in subset(val_images, len(va), seed + 1)]
    return (DatasetBatches(ImageDataset(tr, True, input_size), batch_size, True, seed, rank, world, num_workers),
            DatasetBatches(ImageDataset(va, False, input_size), batch_size, False, seed, rank, world, num_workers))


def calibration_images(train: ArrayLoader | DatasetBatches, n: int, seed: int = 0) -> np.ndarray:
    """``n`` fixed training images (seeded choice, no augmentation) for BN recalibration, decoded once."""
    if isinstance(train, ArrayLoader):
        idx = np.random.default_rng([seed, 7]).choice(len(train.images), min(n, len(train.images)), replace=False)
        return train.images[idx]
    samples = train.dataset.samples
    order = np.random.default_rng([seed, 7]).permutation(len(samples))
    plain = ImageDataset(samples, train=False, size=train.dataset.size)
    out = []
    for i in order:
        item = plain[int(i)]
        if item is not None:
            out.append(item[0])
            if len(out) == n:
                break
    if not out:
        raise DataError("no readable training images for BN calibration")
    return np.stack(out)
