"""How many ImageNet training images one loader worker (one core) prepares per second, and what that means
for cores per GPU.

  python benchmarks/data_throughput.py --out benchmarks/results/data_throughput.json

On generated ImageNet-like JPEGs (500x375, ~90-110 KB, supernet/synthetic.py): decode + RandomResizedCrop
to 224 + flip, then collate a batch of 128, for
  - pil_float32: PIL, normalised to float32 in the worker (the loader before it handed over uint8);
  - pil_uint8: PIL, uint8 (supernet.data.ImageDataset as it is);
  - cv2_uint8: OpenCV's decoder and resize (opencv-python-headless, from PyPI);
  - turbojpeg_uint8: libjpeg-turbo through PyTurboJPEG 1.x (Debian's libturbojpeg0) and OpenCV's resize.
A decoder that is not installed is reported as such. Rows are interleaved round by round (the machine is
shared); images/s per worker is the median over rounds.

Cores per GPU: the GPU side is a stated assumption, not a measurement here (no GPU): a card that trains
ResNet-50 (4.09 GMACs per image) at ``--gpu-resnet50`` images/s with AMP trains a network of M MACs at
about that rate x 4.09 G / M. A sandwich step costs the MACs of its subnets (largest + smallest + 2 random
of the full space, averaged over 2,000 sampled steps); pretrain.py trains one network (the full one).
"""
from __future__ import annotations

import io
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import supernet  # noqa: E402,F401
import numpy as np  # noqa: E402

from supernet.cli import ArgumentParser, entry_point, positive_int  # noqa: E402
from supernet.config import DEFAULTS  # noqa: E402
from supernet.data import IMAGENET_MEAN, IMAGENET_STD, ImageDataset, crop_box, imagenet_samples  # noqa: E402
from supernet.runtime import atomic_write_json, setup_logging  # noqa: E402
from supernet.space import FULL_SPACE, IMAGENET, count_cost  # noqa: E402
from supernet.supernet_train import sandwich  # noqa: E402
from supernet.synthetic import make_image_folder  # noqa: E402

SIZE = 224
RESNET50_GMACS = 4.09
MEAN = np.asarray(IMAGENET_MEAN, np.float32).reshape(3, 1, 1) * 255
STD = np.asarray(IMAGENET_STD, np.float32).reshape(3, 1, 1) * 255


def pil_float32(raw: bytes, rng: random.Random) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(raw)) as im:
        im = im.convert("RGB")
        im = im.resize((SIZE, SIZE), Image.BILINEAR, box=crop_box(*im.size, rng))
        if rng.random() < 0.5:
            im = ImageOps.mirror(im)
        return (np.asarray(im, np.float32).transpose(2, 0, 1) - MEAN) / STD


def _cv2_augment(img: np.ndarray, rng: random.Random) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    x0, y0, x1, y1 = crop_box(w, h, rng)
    out = cv2.resize(img[y0:y1, x0:x1], (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def cv2_uint8(raw: bytes, rng: random.Random) -> np.ndarray:
    import cv2

    img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]  # BGR -> RGB
    return _cv2_augment(img, rng)


_TJ = None


def turbojpeg_uint8(raw: bytes, rng: random.Random) -> np.ndarray:
    global _TJ
    from turbojpeg import TJPF_RGB, TurboJPEG

    _TJ = _TJ or TurboJPEG()
    return _cv2_augment(_TJ.decode(raw, pixel_format=TJPF_RGB), rng)


def decoders() -> dict[str, str | None]:
    """name -> None when usable, else why not."""
    out: dict[str, str | None] = {"pil_float32": None, "pil_uint8": None}
    try:
        import cv2  # noqa: F401

        out["cv2_uint8"] = None
    except ImportError:
        out["cv2_uint8"] = "opencv-python-headless is not installed (pip install opencv-python-headless)"
    try:
        from turbojpeg import TurboJPEG

        TurboJPEG()
        out["turbojpeg_uint8"] = None if out["cv2_uint8"] is None else "needs OpenCV for its resize"
    except Exception as e:  # noqa: BLE001 - ImportError, or the library missing / of another major version
        out["turbojpeg_uint8"] = (f"not usable ({str(e).splitlines()[0][:80]}): apt-get install libturbojpeg0 and "
                                  "pip install 'PyTurboJPEG<2'")
    return out


def sandwich_gmacs(steps: int = 2000) -> float:
    """Mean MACs (G) per image of a default sandwich step (largest, smallest, 2 random) on ImageNet."""
    sw = DEFAULTS["sandwich"]
    total = [sum(count_cost(s.arch, IMAGENET).macs for s in sandwich(FULL_SPACE, sw, 0, k, IMAGENET))
             for k in range(steps)]
    return float(np.mean(total)) / 1e9


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--images", type=positive_int, default=64)
    p.add_argument("--rounds", type=positive_int, default=5)
    p.add_argument("--batch", type=positive_int, default=128)
    p.add_argument("--gpu-resnet50", type=float, default=2500.0,
                   help="assumed ResNet-50 training images/s of one GPU with AMP (default 2500: A100 class)")
    a = p.parse_args(argv)
    setup_logging()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_image_folder(tmp, classes=4, train_per_class=-(-a.images // 4), val_per_class=1,
                                 size=(500, 375), odd=False)
        samples = imagenet_samples(root, "train")[: a.images]
        raws = [Path(s).read_bytes() for s, _ in samples]
        kb = statistics.median(len(r) for r in raws) / 1024
        ds = ImageDataset(samples, train=True, size=SIZE)
        usable = decoders()
        fns = {"pil_float32": pil_float32,
               "cv2_uint8": cv2_uint8, "turbojpeg_uint8": turbojpeg_uint8}
        rates: dict[str, list[float]] = {n: [] for n, why in usable.items() if why is None}
        for r in range(a.rounds):
            for name in rates:
                t = time.perf_counter()
                if name == "pil_uint8":  # the project's own dataset (file read included)
                    for i in range(len(samples)):
                        ds[(i, r)]
                else:
                    for i, raw in enumerate(raws):
                        fns[name](raw, random.Random(f"{r}-{i}"))
                rates[name].append(len(samples) / (time.perf_counter() - t))
        one = {"pil_float32": pil_float32(raws[0], random.Random(0)), "uint8": ds[(0, 0)][0]}
        collate_ms = {}
        for kind, item in one.items():
            batch = [item] * a.batch
            t = time.perf_counter()
            for _ in range(5):
                np.stack(batch)
            collate_ms[kind] = (time.perf_counter() - t) / 5 * 1000
    sw_g, full_g = sandwich_gmacs(), count_cost(FULL_SPACE.largest(), IMAGENET).macs / 1e9
    need_sandwich = a.gpu_resnet50 * RESNET50_GMACS / sw_g
    need_pretrain = a.gpu_resnet50 * RESNET50_GMACS / full_g
    rows = []
    for name, why in usable.items():
        if why is not None:
            rows.append({"pipeline": name, "available": False, "why": why})
            continue
        ips = statistics.median(rates[name])
        rows.append({"pipeline": name, "available": True, "images_per_s_per_worker": round(ips, 1),
                     "cores_per_gpu_sandwich": round(need_sandwich / ips, 2),
                     "cores_per_gpu_pretrain": round(need_pretrain / ips, 2)})
    res = {"images": len(samples), "jpeg_kb_median": round(kb, 1), "rounds": a.rounds, "batch": a.batch,
           "collate_ms": {k: round(v, 2) for k, v in collate_ms.items()},
           "assumed_gpu_resnet50_images_per_s": a.gpu_resnet50, "sandwich_gmacs_per_image": round(sw_g, 3),
           "full_resnet48_gmacs": round(full_g, 3), "gpu_images_per_s_sandwich": round(need_sandwich, 1),
           "gpu_images_per_s_pretrain": round(need_pretrain, 1), "rows": rows}
    print(f"{len(samples)} JPEGs of 500x375 (median {kb:.0f} KB); collate of {a.batch}: "
          + ", ".join(f"{k} {v:.1f} ms" for k, v in collate_ms.items()))
    print(f"a GPU at {a.gpu_resnet50:.0f} ResNet-50 images/s trains {need_sandwich:.0f} images/s of the sandwich "
          f"({sw_g:.2f} GMACs per image) and {need_pretrain:.0f} of pretrain.py's full network ({full_g:.2f} GMACs)")
    print(f"{'pipeline':<16} {'img/s/worker':>12} {'cores/GPU sandwich':>19} {'cores/GPU pretrain':>19}")
    for r in rows:
        if r["available"]:
            print(f"{r['pipeline']:<16} {r['images_per_s_per_worker']:>12.1f} {r['cores_per_gpu_sandwich']:>19.2f} "
                  f"{r['cores_per_gpu_pretrain']:>19.2f}")
        else:
            print(f"{r['pipeline']:<16} not available: {r['why']}")
    atomic_write_json(a.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
