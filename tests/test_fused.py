"""The fused oneDNN scoring engine gives the dygraph path's numbers: extract + recalibrate + forward."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

from supernet import onednn
from supernet.bn_calib import recalibrate
from supernet.resnet import SuperNet
from supernet.space import FULL_SPACE, OFFICIAL_SPACE, NetConfig, channel_plan, iter_sample

pytestmark = pytest.mark.skipif(onednn._load() is None, reason="oneDNN library not loadable in this Paddle build")

SMALL = NetConfig(in_channels=1, num_classes=10, width_divisor=8, stem="small", input_size=16)
IMAGENET_STEM = NetConfig(in_channels=3, num_classes=7, width_divisor=16, stem="imagenet", input_size=40)


def supernet_with_random_bn(cfg: NetConfig, seed: int) -> SuperNet:
    """A supernet whose BN affine parameters and running statistics are far from the identity, so that a
    wrong fold, a skipped calibration or a mixed-up channel slice shows in the logits."""
    paddle.seed(seed)
    sn = SuperNet(cfg)
    rng = np.random.default_rng(seed)
    for k, v in sn.state_dict().items():
        if k.endswith("_variance"):
            v.set_value(rng.uniform(0.5, 2.0, v.shape).astype("float32"))
        elif k.endswith("_mean"):
            v.set_value(rng.normal(0, 0.3, v.shape).astype("float32"))
        elif v.ndim == 1:  # BN weight/bias, fc bias
            v.set_value(rng.normal(1.0 if k.endswith("weight") else 0.0, 0.3, v.shape).astype("float32"))
    sn.eval()
    return sn


def dygraph_logits(sn: SuperNet, arch, calib: list[np.ndarray], batches: list[np.ndarray]) -> list[np.ndarray]:
    sub = sn.extract(arch)
    if calib:
        recalibrate(sub, [paddle.to_tensor(c) for c in calib])
    sub.eval()
    with paddle.no_grad():
        return [sub(paddle.to_tensor(x)).numpy() for x in batches]


@pytest.mark.parametrize("cfg", [SMALL, IMAGENET_STEM], ids=["small-stem", "imagenet-stem"])
@pytest.mark.parametrize("k", [0, 2])
def test_fused_matches_dygraph(cfg: NetConfig, k: int):
    from supernet.fused import FusedEngine, layout

    sn = supernet_with_random_bn(cfg, seed=3)
    state = {name: v.numpy() for name, v in sn.state_dict().items()}
    rng = np.random.default_rng(0)
    shape = (cfg.in_channels, cfg.input_size, cfg.input_size)
    calib = [rng.standard_normal((n, *shape)).astype(np.float32) for n in (24, 16)[:k]]
    batches = [rng.standard_normal((n, *shape)).astype(np.float32) for n in (20, 7)]  # a remainder batch too
    engine = FusedEngine()
    archs = [FULL_SPACE.largest(), OFFICIAL_SPACE.smallest(), *iter_sample(OFFICIAL_SPACE, 3, seed=11)]
    for arch in archs * 2:  # the second round runs on cached primitives and reused buffers
        got = engine.logits(layout(channel_plan(arch, cfg), cfg), state, batches, calib)
        want = dygraph_logits(sn, arch, calib, batches)
        assert [g.shape for g in got] == [w.shape for w in want]
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=2e-4, atol=2e-4 * float(np.abs(w).max()))


def _other_inner(block: tuple[int, int]) -> tuple[int, int]:
    """The same block (conv1, conv2 width codes) with another inner (conv1) width."""
    c1, c2 = block
    return (5 if c1 != 5 else 4, c2)


@pytest.mark.parametrize("cfg", [SMALL, IMAGENET_STEM], ids=["small-stem", "imagenet-stem"])
def test_prefix_reuse_is_bit_identical_and_reuses(cfg: NetConfig):
    """Subnets sharing the stem and first-stage blocks start from the saved activations; the logits and
    the calibration statistics are exactly those of an engine that reuses nothing."""
    import dataclasses

    from supernet.fused import FusedEngine, layout
    from supernet.space import parse_code

    sn = supernet_with_random_bn(cfg, seed=5)
    state = {name: v.numpy() for name, v in sn.state_dict().items()}
    other = {k: v * 1.01 if k.endswith("conv.weight") else v for k, v in state.items()}  # another supernet
    rng = np.random.default_rng(1)
    shape = (cfg.in_channels, cfg.input_size, cfg.input_size)
    calib = [rng.standard_normal((n, *shape)).astype(np.float32) for n in (24, 16)]
    batches = [rng.standard_normal((n, *shape)).astype(np.float32) for n in (20, 7)]
    base = sorted(iter_sample(OFFICIAL_SPACE, 6, seed=4), key=lambda a: a.code)
    a0 = base[0]
    # the same first stage with another later stage; one block fewer in stage 1; another stem
    later = dataclasses.replace(a0, blocks=(*a0.blocks[:3], tuple(map(_other_inner, a0.blocks[3]))))
    d1 = max(2, a0.depths[0] - 1)
    shorter = dataclasses.replace(a0, depths=(d1, *a0.depths[1:]), blocks=(a0.blocks[0][:d1], *a0.blocks[1:]))
    b2 = a0.blocks[1]  # the second stage's last block with another inner width: reuse stops inside stage 2
    mid2 = dataclasses.replace(a0, blocks=(a0.blocks[0], (*b2[:-1], _other_inner(b2[-1])),
                                           *a0.blocks[2:]))
    runs = [(a0, state), (later, state), (mid2, state), (shorter, state), (a0, other), (a0, state),
            *[(a, state) for a in base]]
    reuse, fresh = FusedEngine(), FusedEngine(prefix_budget=0)
    for arch, st in runs:
        assert parse_code(arch.code) == arch
        net = layout(channel_plan(arch, cfg), cfg)
        for k in (0, 2):
            got = reuse.logits(net, st, batches, calib[:k])
            want = fresh.logits(net, st, batches, calib[:k])
            assert all(np.array_equal(g, w) for g, w in zip(got, want)), (arch.code, k)
        s1, s2 = reuse.calibrate(net, st, calib), fresh.calibrate(net, st, calib)
        assert all(np.array_equal(s1[n][0], s2[n][0]) and np.array_equal(s1[n][1], s2[n][1]) for n in s2)
    assert reuse.prefix_hits > 20 and fresh.prefix_hits == 0


@pytest.mark.parametrize("stages", [1, 2])
def test_prefix_reuse_reaches_through_the_first_stages(stages: int):
    """A subnet that differs from the last one only in stage 4 reuses the stem and every block of the
    first ``prefix_stages`` stages, per batch, and nothing deeper."""
    import dataclasses

    from supernet.fused import FusedEngine, layout

    cfg = SMALL
    sn = supernet_with_random_bn(cfg, seed=5)
    state = {name: v.numpy() for name, v in sn.state_dict().items()}
    rng = np.random.default_rng(2)
    batches = [rng.standard_normal((n, cfg.in_channels, cfg.input_size, cfg.input_size)).astype(np.float32)
               for n in (9, 5)]
    a0 = next(iter_sample(OFFICIAL_SPACE, 1, seed=7))
    later = dataclasses.replace(a0, blocks=(*a0.blocks[:3], tuple(map(_other_inner, a0.blocks[3]))))
    eng = FusedEngine(prefix_stages=stages)
    eng.logits(layout(channel_plan(a0, cfg), cfg), state, batches)
    before = eng.prefix_hits
    eng.logits(layout(channel_plan(later, cfg), cfg), state, batches)
    assert eng.prefix_hits - before == len(batches) * (1 + sum(a0.depths[:stages]))


def test_calibration_statistics_are_recalibrate_s():
    """The engine's BN statistics equal what bn_calib.recalibrate leaves in the running buffers."""
    from supernet.fused import FusedEngine, layout

    cfg = SMALL
    sn = supernet_with_random_bn(cfg, seed=5)
    state = {name: v.numpy() for name, v in sn.state_dict().items()}
    arch = next(iter_sample(OFFICIAL_SPACE, 1, seed=2))
    rng = np.random.default_rng(1)
    calib = [rng.standard_normal((n, 1, 16, 16)).astype(np.float32) for n in (32, 32, 8)]
    stats = FusedEngine().calibrate(layout(channel_plan(arch, cfg), cfg), state, calib)
    sub = sn.extract(arch)
    recalibrate(sub, [paddle.to_tensor(c) for c in calib])
    ref = sub.state_dict()
    assert stats and all(f"{bn}._mean" in ref for bn in stats)
    for bn, (mean, var) in stats.items():
        np.testing.assert_allclose(mean, ref[f"{bn}._mean"].numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(var, ref[f"{bn}._variance"].numpy(), rtol=1e-4, atol=1e-5)


def test_untied_code_is_refused_like_dygraph():
    """A code that breaks the width tying has no subnet in the shared weights: refused, not scored."""
    from supernet.evaluate import FusedBackend
    from supernet.space import SPACES, tied_violation

    sn = supernet_with_random_bn(SMALL, seed=1)
    untied = next(a for a in iter_sample(SPACES["full_untied"], 200, seed=0) if tied_violation(a))
    with pytest.raises(ValueError, match="cannot run on the supernet"):
        FusedBackend(SMALL, []).logits(sn, untied, [])
