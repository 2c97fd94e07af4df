"""Host time per subnet of the two GPU scoring paths, and what it means for the 45k list on 8 GPUs.

  python benchmarks/scoring_host.py --out benchmarks/results/scoring_host.json

Measured here on the CPU with the ImageNet network (224 pixels) at widths / 8 and one image per batch, so
the convolutions cost little and what is timed is mostly what the host does per subnet whatever the
device: ``dygraph`` builds a standalone model per subnet (``extract``) and reads each batch's logits
back (``.numpy()``); ``supernet`` sets the subnet active on the supernet, keeps counts on the device and
syncs once. Both recalibrate BN on ``--calib-batches`` batches and evaluate ``--eval-batches`` batches,
interleaved subnet by subnet. The projection for 45,000 codes on 8 GPUs adds the device time of the
convolutions from the codes' mean MACs and a stated inference rate (``--gpu-resnet50-infer`` ResNet-50
images/s with AMP; ``--fp32-slowdown`` times slower without). Before (``dygraph``: float32, a host sync per
batch, so the device waits while the host prepares each batch): device time + host time. After
(``supernet``: autocast, one sync per subnet, so the host queues work while the device runs): the larger
of the two. Both are estimates from stated assumptions, not GPU measurements.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import supernet  # noqa: E402,F401
import numpy as np  # noqa: E402
import paddle  # noqa: E402

from supernet.cli import ArgumentParser, entry_point, positive_int  # noqa: E402
from supernet.evaluate import EvalData, score  # noqa: E402
from supernet.resnet import SuperNet  # noqa: E402
from supernet.runtime import atomic_write_json, setup_logging  # noqa: E402
from supernet.space import IMAGENET, OFFICIAL_SPACE, NetConfig, count_cost, iter_sample  # noqa: E402

RESNET50_GMACS = 4.09


class _Data:
    """The cached batches ``score`` reads, without a data set: uint8 images as the loaders give them."""

    def __init__(self, backend: str, calib: int, batches: int, batch: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        img = lambda: rng.integers(0, 256, (batch, 3, 224, 224), dtype=np.uint8)  # noqa: E731
        self.calib = [paddle.to_tensor(img()) for _ in range(calib)]
        self.fused = self.predictor = None
        self.supernet_engine, self.amp, self.streamed = backend == "supernet", False, False
        y = lambda: rng.integers(0, 1000, batch).astype(np.int64)  # noqa: E731
        self.val = [(paddle.to_tensor(img()), paddle.to_tensor(y())) for _ in range(batches)]
        if backend == "dygraph":  # the dygraph path takes float32 images
            from supernet.data import as_float32

            self.val = [(as_float32(x), y) for x, y in self.val]
        self.n_val = batch * batches


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--codes", type=positive_int, default=20)
    p.add_argument("--calib-batches", type=positive_int, default=16)
    p.add_argument("--eval-batches", type=positive_int, default=20, help="10,000 images in batches of 500")
    p.add_argument("--gpu-resnet50-infer", type=float, default=7500.0,
                   help="assumed ResNet-50 inference images/s of one GPU with AMP (default 7500: A100 class)")
    p.add_argument("--fp32-slowdown", type=float, default=2.5, help="float32 inference this many times slower than AMP")
    p.add_argument("--val-images", type=positive_int, default=10000)
    p.add_argument("--calib-images", type=positive_int, default=2048, help="16 batches of 128")
    a = p.parse_args(argv)
    setup_logging()
    cfg = NetConfig(IMAGENET.in_channels, IMAGENET.num_classes, 8, IMAGENET.stem, IMAGENET.input_size)
    paddle.seed(0)
    model = SuperNet(cfg)
    model.eval()
    data = {b: _Data(b, a.calib_batches, a.eval_batches, 1) for b in ("dygraph", "supernet")}
    archs = list(iter_sample(OFFICIAL_SPACE, a.codes + 1, seed=5))
    times: dict[str, list[float]] = {b: [] for b in data}
    for b in data:  # warm-up
        score(model, archs[0], data[b])
    for arch in archs[1:]:
        for b, d in data.items():
            t = time.perf_counter()
            score(model, arch, d)
            times[b].append(time.perf_counter() - t)
    host = {b: statistics.median(v) for b, v in times.items()}
    gmacs = float(np.mean([count_cost(x, IMAGENET).macs for x in iter_sample(OFFICIAL_SPACE, 2000, seed=1)])) / 1e9
    # device time per subnet: calibration + evaluation forward passes at the assumed rate
    device_s = (a.val_images + a.calib_images) * gmacs / (a.gpu_resnet50_infer * RESNET50_GMACS)
    per_subnet = {"dygraph": device_s * a.fp32_slowdown + host["dygraph"], "supernet": max(device_s, host["supernet"])}
    proj = {b: 45000 / 8 * v / 3600 for b, v in per_subnet.items()}
    res = {"codes": a.codes, "calib_batches": a.calib_batches, "eval_batches": a.eval_batches,
           "host_s_per_subnet": {b: round(h, 4) for b, h in host.items()},
           "mean_gmacs_45k_imagenet": round(gmacs, 3), "assumed_gpu_resnet50_infer": a.gpu_resnet50_infer,
           "fp32_slowdown": a.fp32_slowdown, "device_s_per_subnet_amp": round(device_s, 3),
           "s_per_subnet": {b: round(v, 3) for b, v in per_subnet.items()}, "hours_45k_on_8_gpus": {b: round(v, 2) for b, v in proj.items()}}
    print(f"host time per subnet ({a.calib_batches} calibration + {a.eval_batches} evaluation batches): "
          + ", ".join(f"{b} {h * 1000:.0f} ms" for b, h in host.items()))
    print(f"device time per subnet at {a.val_images} + {a.calib_images} images, {gmacs:.2f} GMACs per image, "
          f"{a.gpu_resnet50_infer:.0f} ResNet-50 images/s: {device_s:.2f} s")
    print(f"45,000 codes on 8 GPUs: before (dygraph, float32, sync per batch) {proj['dygraph']:.1f} h, after "
          f"(supernet, autocast, one sync per subnet) {proj['supernet']:.1f} h")
    atomic_write_json(a.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
