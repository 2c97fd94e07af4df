import json
import random
import subprocess
import sys

import numpy as np
import paddle
import pytest

from conftest import ROOT, real_fmnist, run_and_kill, run_env
from supernet.bn_calib import bn_layers, calibration_batches, recalibrate
from supernet.config import ConfigError, load_config
from supernet.resnet import ResNet48, SuperNet, check_state_dict, load_weights
from supernet.space import FMNIST28, FULL_SPACE, OFFICIAL_SPACE, iter_sample, parse_code
from supernet.supernet_train import sandwich

EXAMPLE = "1348311131310000332323230014143424241434543757770000"


@pytest.fixture(scope="module")
def trained_supernet():
    """A supernet whose BN statistics and weights have moved away from their initial values."""
    paddle.seed(0)
    sn = SuperNet(FMNIST28)
    sn.train()
    opt = paddle.optimizer.SGD(0.05, parameters=sn.parameters())
    rng = random.Random(0)
    for _ in range(3):
        sn.set_active(OFFICIAL_SPACE.sample(rng))
        sn(paddle.randn([8, 1, 28, 28])).mean().backward()
        opt.step()
        opt.clear_grad()
    sn.eval()
    return sn


def test_extracted_subnet_equals_supernet(trained_supernet):
    sn = trained_supernet
    x = paddle.randn([4, 1, 28, 28])
    codes = [OFFICIAL_SPACE.largest(), OFFICIAL_SPACE.smallest(), FULL_SPACE.smallest(),
             *iter_sample(OFFICIAL_SPACE, 3, seed=5), *iter_sample(FULL_SPACE, 2, seed=6)]
    for a in codes:
        sn.set_active(a)
        y_super = sn(x).numpy()
        sub = sn.extract(a)
        assert sub.arch == a
        np.testing.assert_allclose(sub(x).numpy(), y_super, rtol=1e-5, atol=1e-5)
        n_sub = sum(int(np.prod(v.shape)) for v in sub.state_dict().values())
        assert n_sub < sum(int(np.prod(v.shape)) for v in sn.state_dict().values()) or a == FULL_SPACE.largest()


def test_untied_code_is_refused(trained_supernet):
    untied = EXAMPLE[:7] + "5" + EXAMPLE[8:]
    with pytest.raises(ValueError, match="stage 1 slot 1 conv2 code 5 differs from the stem code 1"):
        trained_supernet.set_active(untied)
    trained_supernet.set_active(EXAMPLE)  # a tied code still works afterwards


def test_full_checkpoint_loads_into_supernet_and_runs_identically():
    full = ResNet48.from_code(FULL_SPACE.largest(), FMNIST28)
    full.eval()
    sn = SuperNet(FMNIST28)
    load_weights(sn, full.state_dict())
    sn.eval()
    sn.set_active(FULL_SPACE.largest())
    x = paddle.randn([2, 1, 28, 28])
    np.testing.assert_allclose(sn(x).numpy(), full(x).numpy(), rtol=1e-5, atol=1e-5)


def test_foreign_checkpoint_is_refused_with_a_list(tmp_path):
    sn = SuperNet(FMNIST28)
    small = ResNet48.from_code(OFFICIAL_SPACE.smallest(), FMNIST28)
    path = tmp_path / "small.pdparams"
    paddle.save(small.state_dict(), str(path))
    with pytest.raises(ValueError) as e:
        load_weights(sn, str(path))
    msg = str(e.value)
    assert "does not fit this model" in msg and "missing" in msg and "shape" in msg
    problems = check_state_dict(sn, paddle.load(str(path)))
    assert "missing: blocks.5.conv1.weight [8, 8, 3, 3]" in problems  # widths / 8 (the proxy)
    assert "shape: blocks.20.conv1.weight checkpoint [45, 45, 3, 3] vs model [64, 64, 3, 3]" in problems
    other = {k.replace("blocks", "layers"): v for k, v in sn.state_dict().items()}
    with pytest.raises(ValueError, match="252 unexpected; no name in common.*'layers.0.conv.weight'"):
        load_weights(sn, other)


def test_recalibration_is_exact_average_over_batches():
    paddle.seed(1)
    sn = SuperNet(FMNIST28)
    a = next(iter_sample(OFFICIAL_SPACE, 1, seed=9))
    sn.set_active(a)
    sn.eval()
    images = np.random.default_rng(0).normal(size=(24, 1, 28, 28)).astype(np.float32)
    batches = calibration_batches(images, 8)
    assert len(batches) == 3
    seen: dict[int, list] = {}
    hooks = [bn.register_forward_pre_hook(lambda layer, inp, i=i: seen.setdefault(i, []).append(inp[0].numpy()))
             for i, bn in enumerate(bn_layers(sn))]
    recalibrate(sn, batches)
    for h in hooks:
        h.remove()
    assert not sn.training  # mode restored
    layers = bn_layers(sn)
    assert len(seen) == 1 + 2 * sum(a.depths) + 3  # stem, two per block, three projections
    for i, inputs in seen.items():
        c = inputs[0].shape[1]
        mean = np.mean([x.mean(axis=(0, 2, 3)) for x in inputs], axis=0)
        var = np.mean([x.var(axis=(0, 2, 3)) for x in inputs], axis=0)
        np.testing.assert_allclose(layers[i]._mean.numpy()[:c], mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(layers[i]._variance.numpy()[:c], var, rtol=1e-4, atol=1e-5)
    assert all(bn._momentum == 0.9 for bn in layers)  # restored


def test_recalibration_of_plain_model_too():
    m = ResNet48.from_code(EXAMPLE, FMNIST28)
    images = np.random.default_rng(1).normal(size=(16, 1, 28, 28)).astype(np.float32)
    recalibrate(m, calibration_batches(images, 16))
    stem_in = m.blocks[0].conv(paddle.to_tensor(images)).numpy()
    np.testing.assert_allclose(m.blocks[0].bn._mean.numpy(), stem_in.mean(axis=(0, 2, 3)), rtol=1e-4, atol=1e-5)


def test_sandwich_is_a_function_of_seed_and_step():
    sw = {"largest": True, "smallest": True, "num_random": 2}
    a = [s.arch.code for s in sandwich(OFFICIAL_SPACE, sw, 0, 17)]
    b = [s.arch.code for s in sandwich(OFFICIAL_SPACE, sw, 0, 17)]
    c = [s.arch.code for s in sandwich(OFFICIAL_SPACE, sw, 0, 18)]
    assert a == b and a != c
    assert a[0] == OFFICIAL_SPACE.largest().code and a[1] == OFFICIAL_SPACE.smallest().code
    assert all(OFFICIAL_SPACE.contains(parse_code(x)) for x in a)


def test_biased_sandwich_takes_the_largest_of_a_pool_and_a_random_one_every_kth_step():
    from supernet.space import count_cost

    sw = {"largest": True, "smallest": True, "num_random": 4, "bias_pool": 400, "bias_random_every": 3}
    macs = lambda code: count_cost(parse_code(code), FMNIST28).macs  # noqa: E731
    for step in (0, 1, 2, 3):
        got = [s for s in sandwich(FULL_SPACE, sw, 0, step, FMNIST28) if s.kind == "random"]
        assert len(got) == (5 if step % 3 == 0 else 4)
        assert [s.arch.code for s in got] == [s.arch.code for s in sandwich(FULL_SPACE, sw, 0, step, FMNIST28)
                                              if s.kind == "random"]
        plain = [macs(s.arch.code) for s in sandwich(FULL_SPACE, {**sw, "bias_pool": 0}, 0, step, FMNIST28)
                 if s.kind == "random"]
        biased = [macs(s.arch.code) for s in got[:4]]
        assert biased == sorted(biased, reverse=True) and min(biased) > np.median(plain)


def test_sandwich_computed_a_step_ahead_is_the_direct_one():
    import copy
    import functools

    from supernet.config import DEFAULTS
    from supernet.supernet_train import SandwichAhead

    sw = {**copy.deepcopy(DEFAULTS["sandwich"]), "bias_pool": 50}
    direct = functools.partial(sandwich, FULL_SPACE, sw, 3, cfg=FMNIST28)
    ahead = SandwichAhead(direct)
    for step in (0, 1, 2, 7, 8):  # 7: a jump, as after a resume
        assert [s.arch.code for s in ahead(step=step)] == [s.arch.code for s in direct(step=step)]


def test_deep_depth_sampling_trains_the_last_blocks_more_and_uniform_is_unchanged():
    import dataclasses
    import random

    deep = dataclasses.replace(FULL_SPACE, depth_bias="deep")
    rng_a, rng_b = random.Random(3), random.Random(3)
    n = 4000
    uni = [FULL_SPACE.sample(rng_a).depths for _ in range(n)]
    # uniform draws are the historical randint draws (runs without the switch stay bit-identical)
    rng_c = random.Random(3)
    first = rng_c.randint(2, 5), rng_c.randint(2, 5), rng_c.randint(2, 8), rng_c.randint(2, 5)
    assert uni[0] == first
    biased = [deep.sample(rng_b).depths for _ in range(n)]
    share = lambda ds, s, d: sum(x[s] == d for x in ds) / n  # noqa: E731
    assert abs(share(uni, 3, 5) - 0.25) < 0.03 and abs(share(biased, 3, 5) - 0.4) < 0.03
    assert abs(share(biased, 3, 2) - 0.1) < 0.02 and abs(share(biased, 2, 8) - 7 / 28) < 0.03
    assert all(FULL_SPACE.contains(a) for a in (deep.sample(rng_b) for _ in range(50)))
    with pytest.raises(ValueError, match="depth_bias"):
        dataclasses.replace(FULL_SPACE, depth_bias="shallow")


def test_narrow_width_sampling_favours_narrow_codes_and_keeps_the_tying():
    import dataclasses
    import random

    from supernet.space import OFFICIAL_SPACE

    narrow = dataclasses.replace(FULL_SPACE, width_bias="narrow")
    rng = random.Random(5)
    archs = [narrow.sample(rng) for _ in range(3000)]
    assert all(FULL_SPACE.contains(a) and a.is_tied for a in archs)
    stems = [a.stem for a in archs]
    share = lambda c: stems.count(c) / len(stems)  # noqa: E731
    assert abs(share(7) - 7 / 28) < 0.03 and abs(share(1) - 1 / 28) < 0.015  # codes 1..7 weighted 1..7
    small = dataclasses.replace(OFFICIAL_SPACE, width_bias="narrow")  # stage 1-2 choices 1-3: weights 1:2:3
    stage1 = [c for a in (small.sample(rng) for _ in range(3000)) for c, _ in a.blocks[0]]
    assert abs(stage1.count(3) / len(stage1) - 0.5) < 0.03
    narrowest = dataclasses.replace(FULL_SPACE, width_bias="narrowest")  # weights 1:4:...:49 (sum 140)
    stems = [narrowest.sample(rng).stem for _ in range(3000)]
    assert abs(stems.count(7) / len(stems) - 49 / 140) < 0.03 and stems.count(1) / len(stems) < 0.02
    with pytest.raises(ValueError, match="width_bias"):
        dataclasses.replace(FULL_SPACE, width_bias="wide")


def test_rank_weight_ramp():
    from supernet.supernet_train import rank_weight_at

    sw = {"rank_weight": 2.0, "rank_ramp_epochs": 20.0}
    assert [rank_weight_at(sw, e) for e in (0, 5, 10, 20, 30)] == [0.0, 0.5, 1.0, 2.0, 2.0]  # min(2, epoch/10)
    assert rank_weight_at({"rank_weight": 0.7, "rank_ramp_epochs": 0}, 3.0) == 0.7


def test_config_overrides_and_errors(tmp_path):
    cfg = load_config(ROOT / "configs" / "fmnist_baseline.yaml", ["train.epochs=3", "sandwich.teacher=null"])
    assert cfg["train"]["epochs"] == 3 and cfg["sandwich"]["num_random"] == 2 and not cfg["sandwich"]["largest"]
    assert cfg["train"]["batch_size"] == 128  # from the base file
    with pytest.raises(ConfigError, match="unknown config key train.epoch"):
        load_config(ROOT / "configs" / "fmnist_sandwich.yaml", ["train.epoch=3"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("sandwich:\n  nmu_random: 3\n")
    with pytest.raises(ConfigError, match="sandwich.nmu_random"):
        load_config(bad)
    for f in (ROOT / "configs").glob("*.yaml"):
        load_config(f)


TINY = ["-o", "data.train_images=256", "-o", "data.val_images=200", "-o", "train.batch_size=32",
        "-o", "train.epochs=2", "-o", "train.log_every=2"]


def test_train_supernet_sh_under_launch_with_two_processes(tmp_path):
    real_fmnist()
    out = tmp_path / "sn"
    env = {**run_env(), "NPROC": "2", "LOG_DIR": str(tmp_path / "launch")}
    r = subprocess.run(["bash", str(ROOT / "train_supernet.sh"), "configs/fmnist_sandwich.yaml", *TINY,
                        "-o", f"train.output_dir={out}", "-o", "train.eval_codes=1"],
                       env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)
    logs = "".join(p.read_text() for p in sorted((tmp_path / "launch").glob("workerlog.*")))
    assert r.returncode == 0, logs[-4000:]
    assert "2 process(es)" in logs
    records = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert {"loss_largest", "loss_smallest", "loss_random", "lr", "img_per_s"} <= set(train[0])
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [1, 2]
    assert (out / "supernet.pdparams").is_file() and (out / "supernet.yaml").is_file()
    # the ranks-agree guard ran at every logged step; a divergence would have failed the run
    assert "ranks sampled different subnets" not in logs


@pytest.mark.parametrize("config,extra", [("fmnist_sandwich.yaml", []), ("fmnist_progressive.yaml", []),
                                          ("fmnist_sandwich.yaml", ["-o", "sandwich.sort_channels_every=1"])])
def test_supernet_resume_after_kill_gives_same_weights(tmp_path, config, extra):
    """Killed at step 6 of 16 (for progressive shrinking: inside the depth phase, steps 3.2 to 9.6; with channel
    sorting: before the sort at step 8), resumed: the weights of the uninterrupted run."""
    real_fmnist()
    common = [sys.executable, str(ROOT / "train_supernet.py"), "-c", str(ROOT / "configs" / config),
              *TINY, "-o", "train.save_every_steps=3", "-o", "train.eval_codes=0", *extra]
    ref = subprocess.run(common + ["-o", f"train.output_dir={tmp_path / 'ref'}"], env=run_env(), capture_output=True,
                         text=True, timeout=900)
    assert ref.returncode == 0, ref.stderr[-3000:]
    if extra:
        assert "step 8: channels sorted by importance" in ref.stderr
    out = tmp_path / "killed"
    run_and_kill(common + ["-o", f"train.output_dir={out}"], (out / "checkpoints" / "ckpt_s000000006.json").exists)
    assert not (out / "supernet.pdparams").exists()
    res = subprocess.run(common + ["-o", f"train.output_dir={out}", "--resume"], env=run_env(), capture_output=True,
                         text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resuming from" in res.stderr
    a = {k: v.numpy() for k, v in paddle.load(str(tmp_path / "ref" / "supernet.pdparams")).items()}
    b = {k: v.numpy() for k, v in paddle.load(str(out / "supernet.pdparams")).items()}
    worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    assert worst == 0.0, f"resumed supernet differs from the uninterrupted one by up to {worst}"


def test_resume_refuses_another_runs_checkpoints(tmp_path):
    real_fmnist()
    out = tmp_path / "sn"
    base = [sys.executable, str(ROOT / "train_supernet.py"), "-c", str(ROOT / "configs" / "fmnist_sandwich.yaml"),
            *TINY, "-o", "train.eval_codes=0", "-o", f"train.output_dir={out}", "-o", "train.save_every_steps=2",
            "--max_steps", "3"]
    assert subprocess.run(base, env=run_env(), capture_output=True, timeout=600).returncode == 0
    r = subprocess.run(base + ["-o", "sandwich.num_random=3", "--resume"], env=run_env(), capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 2 and "belongs to another run" in r.stderr


def test_external_teacher_and_init_from_full_checkpoint(tmp_path):
    """The organisers' recipe: start from a full-width checkpoint and distil from it as a frozen teacher."""
    real_fmnist()
    full = ResNet48.from_code(FULL_SPACE.largest(), FMNIST28)
    ckpt = tmp_path / "resnet48_proxy.pdparams"
    paddle.save(full.state_dict(), str(ckpt))
    out = tmp_path / "sn"
    r = subprocess.run([sys.executable, str(ROOT / "train_supernet.py"), "-c", str(ROOT / "configs" / "fmnist_baseline.yaml"),
                        *TINY, "-o", "train.eval_codes=0", "-o", f"train.output_dir={out}", "-o", f"model.init={ckpt}",
                        "-o", f"sandwich.teacher={ckpt}", "-o", "sandwich.sort_channels_at_start=true", "--max_steps", "2"],
                       env=run_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "step 0: channels sorted by importance" in r.stderr and "step 1: channels" not in r.stderr
    bad = tmp_path / "bad.pdparams"
    paddle.save(ResNet48.from_code(OFFICIAL_SPACE.smallest(), FMNIST28).state_dict(), str(bad))
    r = subprocess.run([sys.executable, str(ROOT / "train_supernet.py"), "-c", str(ROOT / "configs" / "fmnist_baseline.yaml"),
                        *TINY, "-o", f"train.output_dir={out}2", "-o", f"sandwich.teacher={bad}", "--max_steps", "1"],
                       env=run_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "teacher checkpoint" in r.stderr and "does not fit" in r.stderr


def test_inplace_distillation_starts_after_the_given_fraction(tmp_path):
    """distill_after=0.5: the first half of training is exactly the no-KD recipe, the second half is not."""
    real_fmnist()
    from supernet.runtime import setup
    from supernet.supernet_train import train_supernet

    ctx = setup("cpu")
    losses = {}
    for name, over in (("no_kd", ["sandwich.inplace_distill=false"]), ("kd_late", ["sandwich.distill_after=0.5"])):
        tiny = [o for o in TINY if o != "-o"]
        cfg = load_config(ROOT / "configs" / "fmnist_sandwich.yaml",
                          tiny + over + ["train.eval_codes=0", f"train.output_dir={tmp_path / name}"])
        train_supernet(cfg, ctx)
        records = [json.loads(l) for l in (tmp_path / name / "log.jsonl").read_text().splitlines()]
        losses[name] = {r["step"]: r["loss_random"] for r in records if r["kind"] == "train"}
    half = 8  # 256 images / batch 32 = 8 steps per epoch, 2 epochs
    early = [s for s in losses["no_kd"] if s <= half]
    late = [s for s in losses["no_kd"] if s > half]
    assert early and late
    assert all(losses["kd_late"][s] == losses["no_kd"][s] for s in early)
    assert all(losses["kd_late"][s] != losses["no_kd"][s] for s in late)


def test_finished_run_is_recognised_across_added_config_keys(tmp_path):
    """A run saved before a config key existed (the key at its default) is the same run; another lr is not."""
    import yaml

    from supernet.supernet_train import finished, run_identity

    cfg = load_config(ROOT / "configs" / "fmnist_sandwich.yaml", [f"train.output_dir={tmp_path}"])
    old = json.loads(json.dumps(cfg))
    del old["sandwich"]["distill_after"]  # as written by a version without that key
    old["train"]["output_dir"] = "elsewhere"  # bookkeeping does not count
    (tmp_path / "supernet.yaml").write_text(yaml.safe_dump(old))
    assert not finished(tmp_path, cfg)  # no weights yet
    (tmp_path / "supernet.pdparams").write_bytes(b"weights")
    assert finished(tmp_path, cfg)
    assert not finished(tmp_path, load_config(ROOT / "configs" / "fmnist_sandwich.yaml", ["train.lr=0.3"]))
    assert "sandwich" not in run_identity(cfg)  # the sandwich section is all defaults


def test_macs_rank_loss_pushes_the_larger_subnet_below_the_smaller():
    """The larger subnet is pushed down, the smaller up, only inside the margin; equal MACs add nothing."""
    from supernet.supernet_train import macs_rank_loss

    L = np.log  # the prior is ln MACs

    loss = paddle.to_tensor(0.50, stop_gradient=False)
    # this subnet is larger than one whose loss is 0.45: violation 0.05 plus margin 0.1 * ln 2
    r = macs_rank_loss(loss, L(2e6), [(0.45, L(1e6))], margin=0.1)
    assert float(r) == pytest.approx(0.05 + 0.1 * np.log(2), rel=1e-5)
    r.backward()
    assert float(loss.grad) == pytest.approx(1.0)  # gradient descent lowers the larger subnet's loss
    loss.clear_gradient()
    # smaller than a subnet with loss 0.52: should have the higher loss by the margin; it is 0.02 short of it
    r = macs_rank_loss(loss, L(1e6), [(0.52, L(4e6))], margin=0.1)
    assert float(r) == pytest.approx(0.02 + 0.1 * np.log(4), rel=1e-5)
    r.backward()
    assert float(loss.grad) == pytest.approx(-1.0)
    # well ordered beyond the margin: zero; the mean is over pairs; equal MACs are skipped
    assert float(macs_rank_loss(loss, L(1e6), [(0.1, L(2e6))], margin=0.1)) == 0.0
    r = macs_rank_loss(loss, L(2e6), [(0.1, L(1e6)), (0.9, L(1e6))], margin=0.0)
    assert float(r) == pytest.approx(0.4 / 2)
    assert macs_rank_loss(loss, L(1e6), [(0.3, L(1e6))], margin=0.1) is None
    assert macs_rank_loss(loss, L(1e6), [], margin=0.1) is None


def test_rank_weight_changes_training_and_zero_is_the_plain_recipe(tmp_path):
    real_fmnist()
    from supernet.runtime import setup
    from supernet.supernet_train import train_supernet

    ctx = setup("cpu")
    tiny = [o for o in TINY if o != "-o"]
    losses = {}
    for name, over in (("plain", []), ("zero", ["sandwich.rank_weight=0"]), ("ranked", ["sandwich.rank_weight=1.0"]),
                       ("zen", ["sandwich.rank_weight=1.0", "sandwich.rank_prior=zen"]),
                       ("ramped", ["sandwich.rank_weight=1.0", "sandwich.rank_ramp_epochs=2"]),
                       ("biased", ["sandwich.bias_pool=50"]), ("deep", ["sandwich.depth_sampling=deep"]),
                       ("narrow", ["sandwich.width_sampling=narrow"]),
                       ("uniform", ["sandwich.depth_sampling=uniform", "sandwich.width_sampling=uniform"])):
        cfg = load_config(ROOT / "configs" / "fmnist_sandwich.yaml",
                          tiny + over + ["train.eval_codes=0", "train.epochs=1", f"train.output_dir={tmp_path / name}"])
        train_supernet(cfg, ctx)
        records = [json.loads(l) for l in (tmp_path / name / "log.jsonl").read_text().splitlines()]
        losses[name] = [r["loss_random"] for r in records if r["kind"] == "train"]
    assert losses["plain"] and losses["zero"] == losses["plain"] == losses["uniform"]
    assert all(np.isfinite(losses["ranked"]))
    weights = {k: paddle.load(str(tmp_path / k / "supernet.pdparams")) for k in losses}
    first = next(iter(weights["plain"]))
    assert np.array_equal(weights["zero"][first].numpy(), weights["plain"][first].numpy())
    assert any(not np.array_equal(weights["ranked"][k].numpy(), v.numpy()) for k, v in weights["plain"].items())
    for switched, base in (("zen", "ranked"), ("ramped", "ranked"), ("biased", "plain"), ("deep", "plain"),
                           ("narrow", "plain")):
        assert any(not np.array_equal(weights[switched][k].numpy(), v.numpy()) for k, v in weights[base].items()), \
            f"{switched} trained the same weights as {base}"


def test_rank_prior_is_cached_log_scale_and_leaves_the_random_state():
    import math

    from supernet.space import FULL_SPACE, NetConfig, count_cost
    from supernet.supernet_train import rank_prior
    from supernet.zero_cost import ZeroCostSettings, score_all
    from supernet.resnet import ResNet48

    cfg = NetConfig(1, 10, 8, "small", 28)
    arch = FULL_SPACE.smallest()
    assert rank_prior("macs", cfg)(arch) == pytest.approx(math.log(count_cost(arch, cfg).macs))
    depth = rank_prior("depth", cfg)
    assert depth(arch) == pytest.approx(math.log(sum(arch.depths)))
    assert depth(FULL_SPACE.largest()) > depth(arch)
    zen = rank_prior("zen", cfg, seed=3)
    paddle.seed(11)
    want = paddle.rand([4]).numpy()
    paddle.seed(11)
    v = zen(arch)
    assert np.array_equal(paddle.rand([4]).numpy(), want), "the prior changed Paddle's random stream"
    direct = score_all(lambda: ResNet48.from_code(arch, cfg), lambda m, x: m.forward_features(x), [(None, None)],
                       [16, 1, 28, 28], ZeroCostSettings(16, 1, 3), ["zen"])["zen"]
    assert v == pytest.approx(direct) and zen.cache_info().misses == 1
    zen(arch)
    assert zen.cache_info().hits == 1


def test_fewshot_groups_partition_the_space():
    from supernet import fewshot

    rules = fewshot.parse_rules([{"stage": 3, "at": 6}, {"stage": 4, "at": 4}])
    assert fewshot.n_groups(rules) == 4
    spaces = [fewshot.group_space(FULL_SPACE, rules, g) for g in range(4)]
    rng = random.Random(0)
    for _ in range(300):
        a = FULL_SPACE.sample(rng)
        g = fewshot.group_of(a, rules)
        assert spaces[g].contains(a) and sum(sp.contains(a) for sp in spaces) == 1
    for g, sp in enumerate(spaces):
        assert fewshot.group_of(sp.largest(), rules) == g == fewshot.group_of(sp.smallest(), rules)
        assert all(fewshot.group_of(sp.sample(rng), rules) == g for _ in range(50))
    for bad in ([{"stage": 5, "at": 3}], [{"stage": 3, "at": 2}], [{"stage": 3}], "3:6",
                [{"stage": 3, "at": 4}, {"stage": 3, "at": 6}]):
        with pytest.raises(fewshot.FewShotError):
            fewshot.parse_rules(bad)


def test_fewshot_training_and_routed_scoring(tmp_path):
    """train_supernet.sh trains the one-shot supernet, then each group from its weights on its codes only,
    writes fewshot.json; eval_subnets scores each code with its group's supernet."""
    real_fmnist()
    out = tmp_path / "fs"
    r = subprocess.run(["bash", str(ROOT / "train_supernet.sh"), str(ROOT / "configs" / "fmnist_sandwich.yaml"),
                        *TINY, "-o", "train.eval_codes=0", "-o", "train.epochs=1", "-o", f"train.output_dir={out}",
                        "-o", "fewshot.split_on=[{stage: 4, at: 4}]", "-o", "fewshot.epochs=1"],
                       env={**run_env(), "NPROC": "1", "LOG_DIR": str(tmp_path / "launch")}, capture_output=True,
                       text=True, timeout=900)
    logs = "".join(p.read_text() for p in (tmp_path / "launch").rglob("workerlog.*"))
    assert r.returncode == 0, (r.stderr + logs)[-3000:]
    manifest = json.loads((out / "fewshot.json").read_text())
    assert manifest["groups"] == ["group0/supernet.pdparams", "group1/supernet.pdparams"]
    one = paddle.load(str(out / "supernet.pdparams"))
    groups = [paddle.load(str(out / f"group{g}" / "supernet.pdparams")) for g in (0, 1)]
    key = "blocks.1.conv1.weight"
    assert not np.array_equal(groups[0][key].numpy(), one[key].numpy())  # trained on from the one-shot weights
    assert "space full/g0" in logs and "space full/g1" in logs
    codes = {"arch1": "1222233333000000333300000055550000000000007777000000",   # stage-4 depth 2: group 0
             "arch2": "1558511131112131312111212121215121315151312111212161"}  # stage-4 depth 5: group 1
    (tmp_path / "codes.json").write_text(json.dumps({k: {"arch": c} for k, c in codes.items()}))
    base = [sys.executable, str(ROOT / "eval_subnets.py"), "--archs", str(tmp_path / "codes.json"), "--val-images",
            "200", "--calib-batches", "1", "--calib-batch-size", "32", "--rank-by", "top1"]
    routed = subprocess.run([*base, "--checkpoint", str(out / "fewshot.json"), "--out", str(tmp_path / "e_fs")],
                            env=run_env(), capture_output=True, text=True, timeout=900)
    assert routed.returncode == 0, routed.stderr[-3000:]
    got = json.loads((tmp_path / "e_fs" / "submission.json").read_text())
    for g, key in ((0, "arch1"), (1, "arch2")):
        one_group = subprocess.run([*base, "--checkpoint", str(out / f"group{g}" / "supernet.pdparams"),
                                    "--out", str(tmp_path / f"e_g{g}")], env=run_env(), capture_output=True,
                                   text=True, timeout=900)
        assert one_group.returncode == 0, one_group.stderr[-3000:]
        want = json.loads((tmp_path / f"e_g{g}" / "submission.json").read_text())
        assert got[key]["acc"] == want[key]["acc"]


def test_progressive_shrinking_schedule():
    from supernet.supernet_train import progressive_space, subnets_at

    ps = {"full_until": 0.2, "depth_until": 0.6}
    assert progressive_space(FULL_SPACE, ps, 0.0) is None and progressive_space(FULL_SPACE, ps, 0.19) is None
    lows = []
    for u in (0.2, 0.3, 0.4, 0.5, 0.59):
        sp = progressive_space(FULL_SPACE, ps, u)
        assert sp.stem_codes == (1,) and all(c == (1,) for c in sp.stage_codes)  # widest only
        assert [hi for _, hi in sp.depth_ranges] == [hi for _, hi in FULL_SPACE.depth_ranges]
        lows.append([lo for lo, _ in sp.depth_ranges])
    assert lows[0] == [hi for _, hi in FULL_SPACE.depth_ranges]  # opens at the deepest setting
    assert all(all(a >= b for a, b in zip(x, y)) for x, y in zip(lows, lows[1:]))  # and only goes down
    assert lows[-1] == [lo for lo, _ in FULL_SPACE.depth_ranges]  # every depth open before widths open
    assert progressive_space(FULL_SPACE, ps, 0.6) is FULL_SPACE
    sw = {"largest": True, "smallest": True, "num_random": 2, "bias_pool": 0}
    assert [s.kind for s in subnets_at(FULL_SPACE, sw, ps, 0, 5, 100, FMNIST28)] == ["largest"]
    off = {"full_until": 0.0, "depth_until": 0.0}
    assert [s.arch.code for s in subnets_at(FULL_SPACE, sw, off, 0, 5, 100, FMNIST28)] == \
        [s.arch.code for s in sandwich(FULL_SPACE, sw, 0, 5, FMNIST28)]


def test_gt_watch_logs_kendall_keeps_the_best_epoch_and_its_codes_are_never_judged(tmp_path):
    real_fmnist()
    codes = [a.code for a in iter_sample(OFFICIAL_SPACE, 6, seed=31)]
    watch, judge = tmp_path / "watch.json", tmp_path / "judge.json"
    watch.write_text(json.dumps({f"a{i}": {"arch": c, "acc": 80.0 + i} for i, c in enumerate(codes[:3])}))
    judge.write_text(json.dumps({f"a{i}": {"arch": c, "acc": 80.0 + (i * 7) % 6} for i, c in enumerate(codes)}))
    out = tmp_path / "sn"
    r = subprocess.run([sys.executable, str(ROOT / "train_supernet.py"), "-c", str(ROOT / "configs" / "fmnist_sandwich.yaml"),
                        *TINY, "-o", "train.eval_codes=0", "-o", f"train.gt_watch={watch}", "-o", "train.calib_batches=1",
                        "-o", f"train.output_dir={out}"], env=run_env(), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    recs = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines() if '"epoch"' in x and "watch_tau" in x]
    assert [x["epoch"] for x in recs] == [1, 2] and all(len(x["watch_ci95"]) == 2 for x in recs)
    choice = json.loads((out / "supernet_best.choice.json").read_text())
    assert choice["codes"] == codes[:3] and (out / "supernet_best.pdparams").is_file()
    assert round(choice["watch_tau"], 4) == max(x["watch_tau"] for x in recs)
    ev = subprocess.run([sys.executable, str(ROOT / "eval_subnets.py"), "--checkpoint", str(out / "supernet_best.pdparams"),
                         "--archs", str(judge), "--out", str(tmp_path / "ev"), "--val-images", "100",
                         "--calib-batches", "1"], env=run_env(), capture_output=True, text=True, timeout=900)
    assert ev.returncode == 0, ev.stderr[-3000:]
    sub = tmp_path / "ev" / "submission.json"
    rc = [sys.executable, str(ROOT / "tools" / "rank_corr.py"), str(sub), str(judge), "--net", "fmnist28"]
    refused = subprocess.run(rc, env=run_env(), capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "chosen by train.gt_watch" in refused.stderr
    held_out = subprocess.run(rc + ["--exclude", str(watch)], env=run_env(), capture_output=True, text=True, timeout=300)
    assert held_out.returncode == 0 and "matched 3 codes" in held_out.stdout, held_out.stderr[-2000:]
