"""Channel sorting by importance: a permutation the full network cannot see, and one that makes the first k
channels the most important ones."""
import numpy as np
import paddle

from supernet.resnet import SuperNet
from supernet.sorting import channel_groups, sort_channels
from supernet.space import FMNIST28, FULL_SPACE
from supernet.train import WarmupCosine, build_optimizer


def trained_supernet(seed: int = 0, steps: int = 3):
    """A supernet a few full-network steps into training (BN statistics and momentum no longer trivial)."""
    paddle.seed(seed)
    model = SuperNet(FMNIST28)
    opt = build_optimizer(model, WarmupCosine(0.05, 0, 100))
    rng = np.random.default_rng(seed)
    batches = [(paddle.to_tensor(rng.normal(size=(8, 1, 28, 28)).astype("float32")),
                paddle.to_tensor(rng.integers(0, 10, 8))) for _ in range(steps)]
    for x, y in batches:
        paddle.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        opt.clear_grad()
    return model, opt, batches


def test_groups_cover_every_weight_of_the_supernet_once_per_axis():
    model = SuperNet(FMNIST28)
    written = [id(t) for g in channel_groups(model) for t in g.writers]
    assert len(written) == len(set(written))
    params = {id(p) for p in model.parameters() if not p.stop_gradient} | {id(b) for b in model.buffers()}
    read = {id(w) for g in channel_groups(model) for w, _ in g.readers}
    # every conv/BN/linear tensor is written (its outputs) or, for the classifier, read; nothing else is touched
    assert params - set(written) == {id(model.blocks[-1].fc.weight), id(model.blocks[-1].fc.bias)}
    assert read <= params


def test_sorting_keeps_the_full_network_and_orders_importance():
    model, opt, batches = trained_supernet()
    x = batches[0][0]
    model.eval()
    before = model(x).numpy()
    model.train()
    stats = sort_channels(model, opt)
    assert stats["sorted_channels_moved"] > 0.5  # a trained network's channels are not in importance order
    model.eval()
    np.testing.assert_allclose(model(x).numpy(), before, rtol=1e-4, atol=1e-5)
    for g in channel_groups(model):
        imp = g.importance()
        assert np.all(np.diff(imp) <= 1e-6 * imp.max()), g.name
    assert sort_channels(model, opt)["sorted_channels_moved"] == 0.0  # sorting twice changes nothing


def test_a_narrow_subnet_changes_and_keeps_the_most_important_channels():
    model, opt, batches = trained_supernet()
    narrow = FULL_SPACE.smallest()
    x = batches[0][0]
    model.eval()
    model.set_active(narrow)
    before = model(x).numpy()
    sort_channels(model, opt)
    model.set_active(narrow)
    assert not np.allclose(model(x).numpy(), before, atol=1e-4)


def test_momentum_moves_with_its_parameters():
    """The optimizer state is permuted with the weights: one full-network step after a sort equals the same step
    without it, channels permuted; without the momentum permuted it does not."""
    model, opt, batches = trained_supernet(steps=2)
    before = {p.name: opt._accumulators["velocity"][p.name].numpy().copy() for p in model.parameters() if not p.stop_gradient}
    sort_channels(model, opt)
    # the velocity of the first block's conv1 followed its output channels (rows) and input channels (columns)
    conv1 = model.blocks[1].conv1.weight
    v = opt._accumulators["velocity"][conv1.name].numpy()
    assert not np.array_equal(v, before[conv1.name])
    np.testing.assert_allclose(np.sort(np.abs(v).sum(axis=(1, 2, 3))),
                               np.sort(np.abs(before[conv1.name]).sum(axis=(1, 2, 3))), rtol=1e-6)
    twin, twin_opt, _ = trained_supernet(steps=2)  # the same run again: same weights and momentum, not sorted
    lost, lost_opt, _ = trained_supernet(steps=2)
    sort_channels(lost, None)  # sorted, momentum left in place
    x, y = batches[0]
    for m, o in ((model, opt), (twin, twin_opt), (lost, lost_opt)):
        paddle.nn.functional.cross_entropy(m(x), y).backward()
        o.step()
        o.clear_grad()
    with paddle.no_grad():  # compared on batch statistics: a few steps in, running statistics are still near init
        out = {name: m(x).numpy() for name, m in (("sorted", model), ("twin", twin), ("lost", lost))}
    gap = lambda a, b: float(np.abs(out[a] - out[b]).max() / np.abs(out[b]).max())  # noqa: E731
    assert gap("sorted", "twin") < 1e-3 and gap("lost", "twin") > 10 * max(gap("sorted", "twin"), 1e-4), \
        (gap("sorted", "twin"), gap("lost", "twin"))
