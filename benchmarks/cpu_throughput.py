"""CPU throughput on the proxy input: training and inference images/s of the standalone model and
of the supernet with the same code active, for the smallest, a median and the largest official
code; Paddle Inference + oneDNN (the scoring path); and, when torch is installed, the same network
in PyTorch side by side (a benchmark-only extra, never a project dependency).

  python benchmarks/cpu_throughput.py [--batch 128] [--rounds 3] [--no-torch]

``*_paddleconv`` columns: the same model with RESNET48_NAS_CONV=paddle (Paddle's own CPU convolution
instead of oneDNN, supernet/onednn.py), measured in the same rounds.

Run it with the thread settings under test, e.g. OMP_NUM_THREADS=1 or MKL_DEBUG_CPU_TYPE= (empty:
MKL's default path on AMD); the table header prints what was in force.
"""
from __future__ import annotations

import argparse
import importlib.util
import os

from common import FMNIST28, environment, interleaved, print_table, size_codes, write_json

import numpy as np
import paddle
import paddle.nn.functional as F

from supernet.evaluate import PredictorBackend
from supernet.resnet import ResNet48, SuperNet
from supernet.space import Arch, channel_plan


def paddle_train(model, x, y, opt):
    def step():
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.clear_grad(set_to_zero=False)
        return float(loss)
    return step


def with_conv(backend, fn):
    """Run ``fn`` with CPU convolutions on ``backend`` (supernet/onednn.py): before/after in one run."""
    def run():
        old = os.environ.get("RESNET48_NAS_CONV", "auto")
        os.environ["RESNET48_NAS_CONV"] = backend
        try:
            return fn()
        finally:
            os.environ["RESNET48_NAS_CONV"] = old
    return run


def paddle_infer(model, x):
    @paddle.no_grad()
    def run():
        return float(model(x)[0, 0])
    return run


def predictor_infer(model, x_np, threads):
    """The scoring path: Paddle Inference + oneDNN (supernet.evaluate.PredictorBackend)."""
    run = PredictorBackend([1, 28, 28], threads).load(model)
    return lambda: float(run(x_np)[0, 0])


def torch_model(arch: Arch):
    """The same network in PyTorch, built from the same channel plan (benchmark only)."""
    import torch.nn as tnn

    plan = channel_plan(arch, FMNIST28)

    class Block(tnn.Module):
        def __init__(self, b):
            super().__init__()
            self.conv1 = tnn.Conv2d(b.in_ch, b.mid, 3, b.stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(b.mid)
            self.conv2 = tnn.Conv2d(b.mid, b.out, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(b.out)
            self.down = (tnn.Sequential(tnn.Conv2d(b.in_ch, b.out, 1, b.stride, bias=False), tnn.BatchNorm2d(b.out))
                         if b.projection else None)

        def forward(self, x):
            idt = x if self.down is None else self.down(x)
            y = self.bn1(self.conv1(x)).relu()
            return (self.bn2(self.conv2(y)) + idt).relu()

    return tnn.Sequential(tnn.Conv2d(1, plan.stem, 3, 1, 1, bias=False), tnn.BatchNorm2d(plan.stem), tnn.ReLU(),
                          *[Block(b) for b in plan.blocks], tnn.AdaptiveAvgPool2d(1), tnn.Flatten(),
                          tnn.Linear(plan.last, 10))


def torch_fns(arch, x_np, y_np, threads):
    import torch

    torch.set_num_threads(threads)
    m = torch_model(arch)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)

    def train():
        m.train()
        loss = torch.nn.functional.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return float(loss)

    def infer():
        m.eval()
        with torch.no_grad():
            return float(m(x)[0, 0])
    return train, infer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--out", default="benchmarks/results/cpu_throughput.json")
    a = p.parse_args()
    env = environment()
    threads = int(env["OMP_NUM_THREADS"] or 1)
    use_torch = not a.no_torch and importlib.util.find_spec("torch") is not None
    rng = np.random.default_rng(0)
    x_np = rng.normal(size=(a.batch, 1, 28, 28)).astype(np.float32)
    y_np = rng.integers(0, 10, a.batch)
    x, y = paddle.to_tensor(x_np), paddle.to_tensor(y_np)
    sn = SuperNet(FMNIST28)
    rows = []
    for name, arch in size_codes().items():
        sub = ResNet48.from_code(arch, FMNIST28)
        step = paddle_train(sub, x, y, paddle.optimizer.Momentum(0.01, parameters=sub.parameters()))
        fns_train = {"standalone": step, "standalone_paddleconv": with_conv("paddle", step)}
        opt_sn = paddle.optimizer.Momentum(0.01, parameters=sn.parameters())

        def sn_train(arch=arch):
            sn.set_active(arch)
            sn.train()
            return paddle_train(sn, x, y, opt_sn)()
        fns_train["supernet"] = sn_train
        sub_eval = ResNet48.from_code(arch, FMNIST28)
        sub_eval.eval()

        def sn_infer(arch=arch):
            sn.set_active(arch)
            sn.eval()
            return paddle_infer(sn, x)()
        fns_infer = {"standalone": paddle_infer(sub_eval, x),
                     "standalone_paddleconv": with_conv("paddle", paddle_infer(sub_eval, x)), "supernet": sn_infer,
                     "predictor_onednn": predictor_infer(sub_eval, x_np, threads)}
        if use_torch:
            t_train, t_infer = torch_fns(arch, x_np, y_np, threads)
            fns_train["torch"] = t_train
            fns_infer["torch"] = t_infer
        tt = interleaved(fns_train, a.rounds, per_round=1)
        ti = interleaved(fns_infer, a.rounds, per_round=2)
        row = {"code": name}
        row.update({f"train_{k}": a.batch / v for k, v in tt.items()})
        row.update({f"infer_{k}": a.batch / v for k, v in ti.items()})
        if use_torch:
            row["train_ratio_vs_torch"] = row["train_standalone"] / row["train_torch"]
            row["paddleconv_train_ratio_vs_torch"] = row["train_standalone_paddleconv"] / row["train_torch"]
            row["supernet_train_ratio_vs_torch"] = row["train_supernet"] / row["train_torch"]
            row["infer_ratio_vs_torch"] = row["infer_standalone"] / row["infer_torch"]
            row["predictor_ratio_vs_torch"] = row["infer_predictor_onednn"] / row["infer_torch"]
        rows.append(row)
    print(f"Paddle {env['paddle']}, OMP_NUM_THREADS={env['OMP_NUM_THREADS']}, "
          f"MKL_DEBUG_CPU_TYPE={env['MKL_DEBUG_CPU_TYPE']}, batch {a.batch}")
    print_table("images/s (higher is better)", rows, list(rows[0]))
    write_json(a.out, {"env": env, "batch": a.batch, "rows": rows})


if __name__ == "__main__":
    main()
