import numpy as np
import paddle
import pytest

from supernet.resnet import ResNet48, check_state_dict, load_weights
from supernet.space import FMNIST28, FULL_SPACE, IMAGENET, OFFICIAL_SPACE, NetConfig, count_cost, parse_code

EXAMPLE = "1348311131310000332323230014143424241434543757770000"


def trainable(model):
    return sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)


def test_official_parameter_names():
    m = ResNet48.from_code(FULL_SPACE.largest(), IMAGENET)
    keys = set(m.state_dict())
    assert {"blocks.0.conv.weight", "blocks.0.bn.weight", "blocks.0.bn._mean", "blocks.0.bn._variance",
            "blocks.1.conv1.weight", "blocks.1.bn1.weight", "blocks.23.conv2.weight", "blocks.23.bn2._variance",
            "blocks.6.downsample.0.weight", "blocks.6.downsample.1.weight", "blocks.24.fc.weight",
            "blocks.24.fc.bias"} <= keys
    assert sorted({k.split(".")[1] for k in keys}, key=int) == [str(i) for i in range(25)]
    assert {k.rsplit(".", 2)[0] for k in keys if "downsample" in k} == {"blocks.6.downsample", "blocks.11.downsample",
                                                                        "blocks.19.downsample"}


def test_shallow_model_keeps_official_indices():
    a = OFFICIAL_SPACE.smallest()  # depths 2,2,2,2
    m = ResNet48.from_code(a, FMNIST28)
    blocks = sorted({int(k.split(".")[1]) for k in m.state_dict()})
    assert blocks == [0, 1, 2, 6, 7, 11, 12, 19, 20, 24]


@pytest.mark.parametrize("cfg", [IMAGENET, FMNIST28])
def test_params_match_analytic(cfg):
    for a in [FULL_SPACE.largest(), OFFICIAL_SPACE.smallest(), parse_code(EXAMPLE)]:
        assert trainable(ResNet48.from_code(a, cfg)) == count_cost(a, cfg).params


def test_forward_shapes():
    m = ResNet48.from_code(EXAMPLE, NetConfig(in_channels=3, num_classes=7))
    m.eval()
    assert m(paddle.randn([2, 3, 64, 64])).shape == [2, 7]
    p = ResNet48.from_code(EXAMPLE, FMNIST28)
    assert p(paddle.randn([2, 1, 28, 28])).shape == [2, 10]


def test_untied_code_runs_standalone():
    untied = EXAMPLE[:7] + "5" + EXAMPLE[8:]
    m = ResNet48.from_code(untied, FMNIST28)
    m.eval()
    assert m(paddle.randn([1, 1, 28, 28])).shape == [1, 10]
    assert "blocks.1.downsample.0.weight" in m.state_dict()


def test_load_weights_refuses_mismatch_with_list():
    a = ResNet48.from_code(EXAMPLE, FMNIST28)
    b = ResNet48.from_code(FULL_SPACE.largest(), FMNIST28)
    with pytest.raises(ValueError) as e:
        load_weights(a, b.state_dict())  # wider, no slicing allowed
    assert "shape: blocks.0.conv.weight" in str(e.value) or "unexpected" in str(e.value)
    bad = dict(a.state_dict())
    bad["foo.weight"] = paddle.zeros([3])
    del bad["blocks.24.fc.bias"]
    problems = check_state_dict(a, bad)
    assert "missing: blocks.24.fc.bias [10]" in problems and "unexpected: foo.weight [3]" in problems


def test_load_weights_slices_a_wider_checkpoint():
    full = ResNet48.from_code(FULL_SPACE.largest(), FMNIST28)
    small = ResNet48.from_code("1" + "5585" + "1" + "22" * 5 + "11" * 18, FMNIST28)  # every block present
    load_weights(small, full.state_dict(), allow_slice=True)
    w_full = full.state_dict()["blocks.3.conv1.weight"].numpy()
    w = small.state_dict()["blocks.3.conv1.weight"].numpy()
    np.testing.assert_array_equal(w, w_full[: w.shape[0], : w.shape[1]])


def test_load_weights_from_file(tmp_path):
    m = ResNet48.from_code(EXAMPLE, FMNIST28)
    path = str(tmp_path / "m.pdparams")
    paddle.save(m.state_dict(), path)
    m2 = ResNet48.from_code(EXAMPLE, FMNIST28)
    load_weights(m2, path)
    np.testing.assert_array_equal(m2.state_dict()["blocks.24.fc.weight"].numpy(),
                                  m.state_dict()["blocks.24.fc.weight"].numpy())
    other = ResNet48.from_code(OFFICIAL_SPACE.smallest(), FMNIST28)
    with pytest.raises(ValueError, match="does not fit"):
        load_weights(other, path)
