"""Data: Fashion-MNIST (the proxy) as in-memory arrays, and ImageNet folders / list files.

The proxy keeps the whole set as one normalised float32 array and cuts batches from it, with
augmentation done on the batch (pad-2 random crop + horizontal flip), so no per-sample Python
work sits in the training loop. Batch order and augmentation derive from (seed, epoch, batch), so
a run resumed in the middle of an epoch sees exactly the batches it would have seen.
"""
from __future__ import annotations

import fcntl
import gzip
import io
import logging
import math
import os
import random
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


# How to point a command at the IDX files: the option differs by command.
POINT_TO_FILES = ("point to a folder with the four IDX files (--data_dir for pretrain.py and the tools, "
                  "-o data.data_dir=DIR for train_supernet.py, data.data_dir in the config for eval_subnets.py)")


def fetch_fmnist(cache_dir: Path = CACHE_DIR) -> Path:
    """Unpack Debian's dataset-fashion-mnist into ``cache_dir`` without root (apt-get download + dpkg-deb).
    Under a lock in the cache: processes started together (the ranks of a launch) fetch it once."""
    target = cache_dir / "fashion-mnist"
    if _has_fmnist(target / FMNIST_SUBDIR):
        return target / FMNIST_SUBDIR
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise DataError(f"Fashion-MNIST not found and apt-get/dpkg-deb are not available to fetch it; {POINT_TO_FILES}")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        lock = open(cache_dir / ".fetch.lock", "w")
    except OSError as e:
        raise DataError(f"Fashion-MNIST not found, and the download cache {cache_dir} cannot be written "
                        f"({e.strerror}): set RESNET48_NAS_CACHE to a writable folder, install "
                        f"{FMNIST_DEB} with apt-get, or {POINT_TO_FILES}") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _has_fmnist(target / FMNIST_SUBDIR):  # another process fetched it while this one waited
            return target / FMNIST_SUBDIR
        return _fetch_locked(cache_dir, target)


def _fetch_locked(cache_dir: Path, target: Path) -> Path:
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
        raise DataError(f"Fashion-MNIST not found; install {FMNIST_DEB} with apt-get, or {POINT_TO_FILES}")
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


def subset(n: int | None, total: int, seed: int, what: str = "images") -> np.ndarray:
    """A fixed, seeded choice of ``n`` indices out of ``total`` (all, in order, when n is None). More than
    there are is refused: a run must not record a number of images it did not use."""
    if n is not None and n > total:
        raise DataError(f"{n} {what} asked for, but the set has only {total}")
    if n is None or n == total:
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
    tr = subset(train_images, len(xtr), seed, "training images (train_images)")
    te = subset(val_images, len(xte), seed + 1, "evaluation images (val_images)")
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


MAX_SUBSTITUTES = 16  # undecodable images in a row before a training batch gives up


def normalise_uint8(x):
    """ImageNet images as uint8 NCHW (numpy, or a paddle tensor on any device) -> normalised float32.

    Workers hand batches over as uint8 (a quarter of float32's shared memory and of the host-to-device
    copy); the normalisation runs where the batch is, on the GPU in training."""
    if isinstance(x, np.ndarray):
        mean = np.asarray(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1) * 255
        std = np.asarray(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1) * 255
        return (x.astype(np.float32) - mean) / std
    import paddle

    mean = paddle.to_tensor(IMAGENET_MEAN, dtype="float32").reshape([1, 3, 1, 1]) * 255
    std = paddle.to_tensor(IMAGENET_STD, dtype="float32").reshape([1, 3, 1, 1]) * 255
    return (x.astype("float32") - mean) / std


def as_float32(x):
    """A batch as the network takes it: uint8 ImageNet batches normalised, float32 ones (the proxy) as they are."""
    return normalise_uint8(x) if str(getattr(x, "dtype", "")).endswith("uint8") else x


def crop_box(w: int, h: int, rng: random.Random, scale: tuple[float, float] = (0.08, 1.0),
             ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """RandomResizedCrop's box (Inception-style: area share and log-uniform aspect ratio, ten tries, then
    the centre crop of the closest allowed ratio), drawn from ``rng``."""
    area = w * h
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            x0, y0 = rng.randint(0, w - cw), rng.randint(0, h - ch)
            return x0, y0, x0 + cw, y0 + ch
    if w / h < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif w / h > ratio[1]:
        cw, ch = int(round(h * ratio[1])), h
    else:
        cw, ch = w, h
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    return x0, y0, x0 + cw, y0 + ch


class ImageDataset:
    """Decodes images with PIL into uint8 CHW; normalised later where the batch goes (``as_float32``).

    Items are ``(index, epoch)``. Training augmentation (RandomResizedCrop and a horizontal flip) draws
    from an RNG seeded by (seed, epoch, index), so a resumed run replays it exactly, whatever the number
    of workers. A file is read whole first: an error there is the filesystem's (a flaky network mount) and
    stops the run naming the path. An image that cannot be decoded (corrupt, truncated, not an image) is
    replaced in training by the next decodable one, so every rank keeps its batch size and the ranks stay
    in step; in evaluation it is marked (label -1) and dropped from its batch. Both are counted.
    Grayscale, CMYK and palette images are converted to RGB."""

    def __init__(self, samples: list[tuple[str, int]], train: bool, size: int = 224, seed: int = 0) -> None:
        self.samples, self.train, self.size, self.seed = samples, train, size, seed

    def __len__(self) -> int:
        return len(self.samples)

    def _decode(self, j: int, rng: random.Random | None) -> np.ndarray | None:
        from PIL import Image, ImageOps

        path = self.samples[j][0]
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise DataError(f"cannot read {path}: {e.strerror or e} (a filesystem error, not a bad image)") from None
        try:
            with Image.open(io.BytesIO(raw)) as im:
                im = im.convert("RGB")
                w, h = im.size
                if rng is not None:
                    im = im.resize((self.size, self.size), Image.BILINEAR, box=crop_box(w, h, rng))
                    if rng.random() < 0.5:
                        im = ImageOps.mirror(im)
                else:
                    short = int(self.size * 256 / 224)
                    s = short / min(w, h)
                    im = im.resize((max(short, round(w * s)), max(short, round(h * s))), Image.BILINEAR)
                    left, top = (im.width - self.size) // 2, (im.height - self.size) // 2
                    im = im.crop((left, top, left + self.size, top + self.size))
                return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()
        except Exception as e:  # noqa: BLE001 - the bytes are in memory: whatever fails here is the image
            log.debug("undecodable image %s: %s", path, e)
            return None

    def __getitem__(self, item) -> tuple[np.ndarray, np.int64, np.int64]:
        """(uint8 image, label, flag) for the DataLoader: flag 0 as read, 1 replaced or dropped, 2 an error
        that stops the run. The error is only flagged here: raised in a loader's worker process or thread
        (paddle uses a thread even without workers) it kills the loader's queue, and the main process
        hangs or gets a message that does not name the file; ``DatasetBatches`` repeats the item with
        ``_item`` in the main process to raise it."""
        try:
            return self._item(item)
        except DataError:
            return np.zeros((3, self.size, self.size), np.uint8), np.int64(-1), np.int64(2)

    def _item(self, item) -> tuple[np.ndarray, np.int64, np.int64]:
        i, epoch = item if isinstance(item, tuple) else (int(item), 0)
        for k in range(MAX_SUBSTITUTES if self.train else 1):
            j = (i + k) % len(self.samples)
            rng = random.Random(f"{self.seed}-{epoch}-{i}-{k}") if self.train else None
            img = self._decode(j, rng)
            if img is not None:
                return img, np.int64(self.samples[j][1]), np.int64(k > 0)
        if self.train:
            raise DataError(f"{MAX_SUBSTITUTES} images in a row from {self.samples[i][0]} on cannot be decoded")
        return np.zeros((3, self.size, self.size), np.uint8), np.int64(-1), np.int64(1)


def collate(batch: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 images, labels (-1: an evaluation image that could not be decoded) and replaced/dropped flags."""
    return (np.stack([b[0] for b in batch]), np.array([b[1] for b in batch], np.int64),
            np.array([b[2] for b in batch], np.int64))


class DatasetBatches:
    """The ArrayLoader interface over a decoded-image dataset (ImageNet), with workers.

    Same ordering rule as ArrayLoader: a permutation seeded by (seed, epoch), global batches cut
    from it, each rank's strided share, and ``start`` batches skipped without decoding them.
    Undecodable images are replaced (training) or dropped (evaluation), and counted in ``skipped``.
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
        batches = [[(i, epoch) for i in order[b * g: (b + 1) * g][self.rank:: self.world].tolist()]
                   for b in range(start, len(self))]
        batches = [b for b in batches if b]
        loader = paddle.io.DataLoader(self.dataset, batch_sampler=batches, collate_fn=collate,
                                      num_workers=self.num_workers, return_list=True)
        for b, (x, y, bad) in enumerate(loader):
            failed = np.flatnonzero(np.asarray(bad) == 2)
            if len(failed):
                self.dataset._item(batches[b][int(failed[0])])  # raises the worker's DataError here, with its message
            k = int((bad > 0).sum())
            if k:
                self.skipped += k
                log.warning("%s %d undecodable images (%d so far)", "replaced" if self.train else "dropped", k,
                            self.skipped)
                if not self.train:
                    keep = paddle.nonzero(y >= 0).flatten()
                    if keep.shape[0] == 0:
                        continue
                    x, y = paddle.gather(x, keep), paddle.gather(y, keep)
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
    tr = [tr[i] for i in subset(train_images, len(tr), seed, "training images (train_images)")]
    va = [va[i] for i in subset(val_images, len(va), seed + 1, "evaluation images (val_images)")]
    return (DatasetBatches(ImageDataset(tr, True, input_size, seed), batch_size, True, seed, rank, world, num_workers),
            DatasetBatches(ImageDataset(va, False, input_size, seed), batch_size, False, seed, rank, world,
                           num_workers))


def calibration_images(train: ArrayLoader | DatasetBatches, n: int, seed: int = 0) -> np.ndarray:
    """``n`` fixed training images (seeded choice, no augmentation) for BN recalibration, decoded once
    (ImageNet: uint8, as the loaders give them)."""
    if isinstance(train, ArrayLoader):
        if n > len(train.images):
            raise DataError(f"{n} calibration images (calibration batches x batch size) asked for, but the "
                            f"training set has only {len(train.images)}")
        idx = np.random.default_rng([seed, 7]).choice(len(train.images), n, replace=False)
        return train.images[idx]
    samples = train.dataset.samples
    order = np.random.default_rng([seed, 7]).permutation(len(samples))
    plain = ImageDataset(samples, train=False, size=train.dataset.size)
    out = []
    for i in order:
        img, label, _ = plain._item(int(i))  # raises on a filesystem error
        if label >= 0:
            out.append(img)
            if len(out) == n:
                break
    if not out:
        raise DataError("no readable training images for BN calibration")
    if len(out) < n:
        raise DataError(f"{n} calibration images (calibration batches x batch size) asked for, but only {len(out)} "
                        "training images could be read")
    return np.stack(out)  # uint8: normalised where it is used (bn_calib.recalibrate), a quarter of the memory
