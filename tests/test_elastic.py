"""Elastic layers on their own: sliced forward equals a plain layer holding the sliced weights."""
import numpy as np
import paddle
import paddle.nn as nn
import pytest

from supernet.elastic import ElasticBatchNorm2D, ElasticConv2D, ElasticLinear, slice_to


def close(a, b, tol=1e-5):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("cin,cout,k,stride,pad", [(5, 3, 3, 1, 1), (8, 8, 3, 2, 1), (6, 4, 1, 2, 0), (2, 7, 7, 2, 3)])
def test_conv_slice_equals_plain(cin, cout, k, stride, pad):
    paddle.seed(1)
    el = ElasticConv2D(8, 8, k, stride, pad)
    el.active_out = cout
    x = paddle.randn([2, cin, 9, 9])
    plain = nn.Conv2D(cin, cout, k, stride=stride, padding=pad, bias_attr=False)
    plain.weight.set_value(el.weight[:cout, :cin])
    close(el(x), plain(x))


def test_conv_gradient_flows_into_the_slice_only():
    el = ElasticConv2D(6, 6, 3, 1, 1)
    el.active_out = 4
    el(paddle.randn([2, 3, 5, 5])).sum().backward()
    g = el.weight.grad.numpy()
    assert np.abs(g[:4, :3]).sum() > 0
    assert np.abs(g[4:]).sum() == 0 and np.abs(g[:, 3:]).sum() == 0


def test_linear_slice_equals_plain():
    paddle.seed(2)
    el = ElasticLinear(16, 10)
    x = paddle.randn([3, 11])
    plain = nn.Linear(11, 10)
    plain.weight.set_value(el.weight[:11])
    plain.bias.set_value(el.bias)
    close(el(x), plain(x))
    el.active_out = 4
    assert el(x).shape == [3, 4]


def _bn_pair(c_full, c):
    paddle.seed(3)
    el = ElasticBatchNorm2D(c_full)
    with paddle.no_grad():
        el.weight.set_value(paddle.rand([c_full]) + 0.5)
        el.bias.set_value(paddle.randn([c_full]))
        el._mean.set_value(paddle.randn([c_full]))
        el._variance.set_value(paddle.rand([c_full]) + 0.5)
    plain = nn.BatchNorm2D(c)
    for name in ("weight", "bias", "_mean", "_variance"):
        getattr(plain, name).set_value(getattr(el, name)[:c])
    return el, plain


@pytest.mark.parametrize("c", [3, 8])
@pytest.mark.parametrize("training", [True, False])
def test_bn_slice_equals_plain_and_updates_through_the_slice(c, training):
    el, plain = _bn_pair(8, c)
    el.train(training)
    plain.train(training)
    before = el._mean.numpy().copy(), el._variance.numpy().copy()
    x = paddle.randn([4, c, 5, 5]) * 2 + 1
    close(el(x), plain(x))
    close(el._mean[:c], plain._mean)
    close(el._variance[:c], plain._variance)
    changed = not np.allclose(el._mean.numpy()[:c], before[0][:c])
    assert changed == training, "running statistics must change in training mode and only then"
    np.testing.assert_array_equal(el._mean.numpy()[c:], before[0][c:])  # channels outside the slice untouched
    np.testing.assert_array_equal(el._variance.numpy()[c:], before[1][c:])


def test_bn_updates_every_call_even_after_eval():
    """PaddleSlim froze BN statistics after a first eval-mode call; here they keep moving."""
    el, _ = _bn_pair(8, 4)
    el.eval()
    el(paddle.randn([2, 4, 3, 3]))
    el.train()
    seen = []
    for _ in range(3):
        el(paddle.randn([2, 4, 3, 3]) + 3)
        seen.append(el._mean.numpy()[:4].copy())
    assert not np.allclose(seen[0], seen[1]) and not np.allclose(seen[1], seen[2])


def test_bn_gradients_match_plain():
    el, plain = _bn_pair(8, 5)
    x = paddle.randn([4, 5, 3, 3])
    x1, x2 = x.clone(), x.clone()
    x1.stop_gradient = x2.stop_gradient = False
    (el(x1) ** 2).sum().backward()
    (plain(x2) ** 2).sum().backward()
    close(x1.grad, x2.grad, 1e-4)
    close(el.weight.grad[:5], plain.weight.grad, 1e-4)
    assert float(el.weight.grad[5:].abs().sum()) == 0.0


def test_slice_to():
    t = paddle.arange(24).reshape([2, 3, 4])
    assert slice_to(t, [1, 2, 2]).numpy().tolist() == [[[0, 1], [4, 5]]]
    with pytest.raises(ValueError):
        slice_to(t, [3, 3, 4])


def test_frozen_slices_give_the_same_outputs_and_are_dropped_on_exit():
    import numpy as np
    import paddle

    from supernet.elastic import frozen_slices
    from supernet.resnet import SuperNet
    from supernet.space import FMNIST28, OFFICIAL_SPACE, iter_sample

    paddle.seed(0)
    sn = SuperNet(FMNIST28)
    sn.eval()
    x = paddle.randn([4, 1, 28, 28])
    archs = list(iter_sample(OFFICIAL_SPACE, 2, seed=3))
    plain = []
    for a in archs:
        sn.set_active(a)
        plain.append(sn(x).numpy())
    with frozen_slices(sn):
        for a, want in zip(archs, plain):
            sn.set_active(a)
            assert np.array_equal(sn(x).numpy(), want)
            assert np.array_equal(sn(x).numpy(), want)  # the second forward reads the memo
    assert all(m.__dict__.get("_slice_memo") is None for m in sn.sublayers())
    with paddle.no_grad():  # weights changed after the block: the next forward sees them
        for p in sn.parameters():
            p.set_value(p * 0.5)
    assert not np.array_equal(sn(x).numpy(), plain[-1])
