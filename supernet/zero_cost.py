"""Zero-cost predictors: scores of a randomly initialised network that correlate with its trained accuracy.

A supernet must beat these to earn its training, and the strongest is the best prior for a ranking loss.
Each function follows its paper's definition; the network-level ones sum over the weights of every
convolution and linear layer (the "prunable" layers of Abdelfattah et al.).

- Zen-Score (Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition", ICCV 2021):
  residual links removed (Algorithm 1, step 1), weights ~ N(0, 1), BN with batch statistics,
  x, eps ~ N(0, 1), alpha = 0.01;
  Zen = log E ||f(x) - f(x + alpha eps)||_F + sum_i log sqrt(mean_j sigma_ij^2), with f the feature map
  before global pooling and sigma_ij the batch standard deviation of channel j at BN layer i.
- NASWOT (Mellor et al., "Neural Architecture Search without Training", ICML 2021): binary ReLU codes
  c_i of the images of a mini-batch; K[i, j] = N_A - Hamming(c_i, c_j); score = log |det K|.
- SynFlow (Tanaka et al., "Pruning neural networks without any data by iteratively conserving synaptic
  flow", NeurIPS 2020): all parameters replaced by their absolute values, input all ones, R = sum of the
  outputs; score = sum over weights of (dR/dtheta * theta). Float64, BN in inference mode with the
  statistics of initialisation (the identity, as the paper's data-free setting needs): the training-mode
  pass of grad-norm/SNIP/NASWOT moves them, so they are put back first, and SynFlow is the same
  whichever predictors run with it.
- grad-norm and SNIP (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021; SNIP:
  Lee et al., ICLR 2019): on one labelled mini-batch with cross-entropy, sum over layers of ||dL/dW||_2,
  and sum of |dL/dW * W|.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

PREDICTORS = ("zen", "naswot", "synflow", "grad_norm", "snip")
FREE = ("macs", "params", "depth")  # read off the code: no network is built (depth = residual blocks)
SCORE_FILES = (*PREDICTORS, *FREE)  # the <name>.json files tools/zero_cost.py writes
NEEDS_BATCH = ("naswot", "grad_norm", "snip")  # the ones computed on labelled images (one shared forward/backward)


def weighted_layers(model: nn.Layer) -> list[nn.Layer]:
    """Convolutions and linear layers (the layers whose weights the network-level scores sum over)."""
    return [m for m in model.sublayers() if isinstance(m, (nn.Conv2D, nn.Linear))]


class NaswotKernel:
    """The NASWOT kernel K = N_A - Hamming(c_i, c_j), accumulated over ReLU layers without keeping codes:
    with G = sum c c^T and s the per-image count of active units, K = 2 G - s_i - s_j + N_A."""

    def __init__(self) -> None:
        self.g = None
        self.s = None
        self.units = 0

    def add(self, codes: paddle.Tensor) -> None:
        """``codes``: [images, units] of 0/1 (float32: the counts stay exact below 2^24 units)."""
        g = paddle.matmul(codes, codes, transpose_y=True).astype("float64")
        s = codes.sum(axis=1).astype("float64")
        self.g, self.s = (g, s) if self.g is None else (self.g + g, self.s + s)
        self.units += codes.shape[1]

    def logdet(self) -> float:
        g, s = self.g.numpy(), self.s.numpy()
        k = 2 * g - s[:, None] - s[None, :] + self.units
        sign, logdet = np.linalg.slogdet(k)
        return float(logdet) if sign != 0 else float("-inf")


def naswot_logdet(codes: np.ndarray) -> float:
    """log|det K| of the NASWOT kernel of binary codes (rows: images, columns: ReLU units)."""
    kern = NaswotKernel()
    kern.add(paddle.to_tensor(np.asarray(codes, np.float32)))
    return kern.logdet()


def grad_scores(model: nn.Layer, x: paddle.Tensor, y: paddle.Tensor,
                kernel: NaswotKernel | None = None) -> dict[str, float]:
    """grad-norm and SNIP from one forward/backward on a labelled batch; with ``kernel`` the same forward
    also accumulates every ReLU's binary codes into the NASWOT kernel."""
    hooks = []
    if kernel is not None:
        def record(_layer, _inputs, out):
            with paddle.no_grad():
                kernel.add((out > 0).astype("float32").reshape([out.shape[0], -1]))
        hooks = [m.register_forward_post_hook(record) for m in model.sublayers() if isinstance(m, nn.ReLU)]
    try:
        model.train()
        model.clear_gradients()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
    finally:
        for h in hooks:
            h.remove()
    gn = snip = 0.0
    for m in weighted_layers(model):
        g = m.weight.grad
        if g is None:
            continue
        g64 = g.astype("float64")
        gn += float(paddle.linalg.norm(g64.flatten()))
        snip += float((g64 * m.weight.astype("float64")).abs().sum())
    model.clear_gradients()
    return {"grad_norm": gn, "snip": snip}


@paddle.no_grad()
def gaussian_init(model: nn.Layer, seed: int) -> None:
    """Zen-NAS's initialisation: conv/linear weights N(0, 1), biases 0, BN gamma 1 and beta 0."""
    gen = np.random.default_rng(seed)
    for m in model.sublayers():
        if isinstance(m, (nn.Conv2D, nn.Linear)):
            m.weight.set_value(gen.standard_normal(m.weight.shape).astype("float32"))
            if getattr(m, "bias", None) is not None:
                m.bias.set_value(paddle.zeros_like(m.bias))
        elif isinstance(m, nn.BatchNorm2D):
            m.weight.set_value(paddle.ones_like(m.weight))
            m.bias.set_value(paddle.zeros_like(m.bias))


@paddle.no_grad()
def zen_score(model: nn.Layer, features: Callable[[paddle.Tensor], paddle.Tensor], shape: list[int], seed: int,
              alpha: float = 0.01, residual: bool = False) -> float:
    """Zen-Score of ``model`` (already Gaussian-initialised) on a batch of ``shape``; ``features`` maps an
    input to the pre-pooling feature map. BN uses batch statistics; its sigma terms come from x. Residual
    links are removed as the paper's Algorithm 1 says (``residual=True`` keeps them: it ranks the proxy's
    ground truth the same, benchmarks/zen_residual.py)."""
    gen = np.random.default_rng(seed)
    x = paddle.to_tensor(gen.standard_normal(shape).astype("float32"))
    eps = paddle.to_tensor(gen.standard_normal(shape).astype("float32"))
    log_sigma: list[float] = []

    def record(_layer, inputs):
        v = inputs[0]  # batch variance per channel as E[v^2] - E[v]^2 (paddle's var() is slow on CPU)
        mean = v.mean(axis=[0, 2, 3])
        var = (v * v).mean(axis=[0, 2, 3]).astype("float64") - (mean * mean).astype("float64")
        log_sigma.append(0.5 * math.log(max(float(var.mean()), 1e-300)))

    model.train()
    blocks = [m for m in model.sublayers() if hasattr(m, "residual")] if not residual else []
    for b in blocks:
        b.residual = False
    hooks = [m.register_forward_pre_hook(record) for m in model.sublayers() if isinstance(m, nn.BatchNorm2D)]
    try:
        f1 = features(x)
        for h in hooks:
            h.remove()
        hooks = []
        f2 = features(x + alpha * eps)
    finally:
        for h in hooks:
            h.remove()
        for b in blocks:
            b.residual = True
    diff = (f1 - f2).astype("float64").reshape([shape[0], -1])
    delta = float(paddle.linalg.norm(diff, axis=1).mean())
    return math.log(max(delta, 1e-300)) + sum(log_sigma)


def cast_(model: nn.Layer, dtype: str) -> None:
    """Cast every parameter and buffer of ``model`` in place, as ``Layer.to(dtype=...)`` does, without its
    per-layer traversal (a third of SynFlow's time at widths / 8). Gradients are dropped first."""
    model.clear_gradients(set_to_zero=False)
    with paddle.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            if t.dtype != paddle.base.framework.convert_np_dtype_to_dtype_(dtype):
                new = t.cast(dtype)  # kept alive until its storage is shared
                t.value().get_tensor()._share_data_with(new.value().get_tensor())


def synflow_score(model: nn.Layer, shape: list[int]) -> float:
    """SynFlow of ``model`` (its current weights, taken in absolute value), float64, input all ones."""
    model.eval()
    cast_(model, "float64")
    with paddle.no_grad():
        for p in model.parameters():
            p.set_value(p.abs())
    model.clear_gradients()
    out = model(paddle.ones([1, *shape[1:]], dtype="float64"))
    out.sum().backward()
    total = 0.0
    for m in weighted_layers(model):
        if m.weight.grad is not None:
            total += float((m.weight.grad * m.weight).sum())
    model.clear_gradients()
    return total


@dataclass(frozen=True)
class ZeroCostSettings:
    batch_size: int = 64  # images per batch for NASWOT, grad-norm and SNIP, and Gaussian samples for Zen
    repeats: int = 1  # independent initialisations (and batches) averaged per code
    seed: int = 0


def score_all(build: Callable[[], nn.Layer], features: Callable[[nn.Layer, paddle.Tensor], paddle.Tensor],
              batches: Iterable[tuple[np.ndarray, np.ndarray]], shape: list[int], s: ZeroCostSettings,
              which: Iterable[str] = PREDICTORS) -> dict[str, float]:
    """Every predictor in ``which`` for the network ``build()`` makes, averaged over ``s.repeats``
    initialisations (repeat r: ``paddle.seed(s.seed + r)`` and the r-th labelled batch)."""
    which = set(which)
    runs: dict[str, list[float]] = {k: [] for k in which}
    for r, (xb, yb) in zip(range(s.repeats), batches):
        paddle.seed(s.seed + r)
        model = build()
        # the state at initialisation, for SynFlow: BN running statistics are (non-trainable) parameters here
        initial = {k: v.clone() for k, v in model.state_dict().items()} if "synflow" in which else None
        if which & set(NEEDS_BATCH):
            kernel = NaswotKernel() if "naswot" in which else None
            g = grad_scores(model, paddle.to_tensor(xb), paddle.to_tensor(yb), kernel)
            for k in ("grad_norm", "snip"):
                if k in which:
                    runs[k].append(g[k])
            if kernel is not None:
                runs["naswot"].append(kernel.logdet())
        if "synflow" in which:  # last use of the default initialisation: Zen re-initialises every weight
            model.set_state_dict(initial)
            runs["synflow"].append(synflow_score(model, shape))
            cast_(model, "float32")
        if "zen" in which:
            gaussian_init(model, s.seed + r)
            runs["zen"].append(zen_score(model, lambda x: features(model, x), [s.batch_size, *shape[1:]],
                                         s.seed + 1000 + r))
    return {k: float(np.mean(v)) for k, v in runs.items()}
