import json
import statistics
import sys

import pytest

from conftest import ROOT

from supernet.space import (FMNIST28, FULL_SPACE, FULL_UNTIED_SPACE, IMAGENET, OFFICIAL_SPACE,
                            ArchCodeError, NetConfig, channel_plan, count_cost, iter_sample, make_divisible,
                            parse_code, tied_violation, width_of)

EXAMPLE = "1348311131310000332323230014143424241434543757770000"

WIDTH_TABLE = {
    64: [64, 64, 56, 56, 48, 48, 48],
    128: [128, 120, 112, 112, 104, 96, 88],
    256: [256, 240, 232, 216, 208, 192, 176],
    512: [512, 488, 464, 432, 408, 384, 360],
}


def test_width_table():
    for base, row in WIDTH_TABLE.items():
        assert [width_of(c, base) for c in range(1, 8)] == row


def test_make_divisible_rule():
    assert make_divisible(3) == 8  # floor at the divisor
    assert make_divisible(60) == 64  # rounds half up
    assert make_divisible(460.8) == 464


def test_example_decodes():
    a = parse_code(EXAMPLE)
    assert a.depths == (3, 4, 8, 3)
    assert a.stem == 1
    assert a.blocks[0] == ((1, 1), (3, 1), (3, 1))
    assert a.code == EXAMPLE


def test_51_char_form_accepted_52_written():
    a = parse_code(EXAMPLE[1:])
    assert a.code == EXAMPLE


@pytest.mark.parametrize("space", [FULL_SPACE, FULL_UNTIED_SPACE, OFFICIAL_SPACE])
def test_round_trip_sampled(space):
    for a in iter_sample(space, 500, seed=1):
        assert len(a.code) == 52
        assert parse_code(a.code) == a
        assert parse_code(a.code[1:]) == a
        assert space.contains(a)


def test_official_sampler_obeys_narrow_space():
    for a in iter_sample(OFFICIAL_SPACE, 2000, seed=2):
        assert a.stem in (1, 2, 3) and a.is_tied
        for s, allowed in enumerate([(1, 2, 3), (1, 2, 3), (1, 2, 3, 4, 5), tuple(range(1, 8))]):
            assert all(c in allowed for pair in a.blocks[s] for c in pair)


def test_samplers_cover_their_choices():
    seen = {c for a in iter_sample(FULL_SPACE, 500, seed=3) for st in a.blocks for p in st for c in p}
    assert seen == set(range(1, 8))
    depths = {a.depths[2] for a in iter_sample(OFFICIAL_SPACE, 500, seed=3)}
    assert depths == set(range(2, 9))
    assert any(not a.is_tied for a in iter_sample(FULL_UNTIED_SPACE, 50, seed=3))


def _bad(code, *fragments):
    with pytest.raises(ArchCodeError) as e:
        parse_code(code)
    for f in fragments:
        assert f in str(e.value), str(e.value)
    return str(e.value)


def test_error_wrong_length():
    _bad(EXAMPLE + "0", "wrong length 53")
    _bad("123", "wrong length 3")


def test_error_non_digit():
    _bad(EXAMPLE[:10] + "x" + EXAMPLE[11:], "position 10", "non-digit")


def test_error_depth_out_of_range():
    _bad(EXAMPLE[:3] + "9" + EXAMPLE[4:], "position 3", "depth of stage 3 is 9", "2..8")
    _bad(EXAMPLE[:1] + "1" + EXAMPLE[2:], "position 1", "depth of stage 1 is 1")


def test_error_active_slot_zero():
    # stage 1 slot 2 conv1 (index 8) is active (depth 3)
    _bad(EXAMPLE[:8] + "0" + EXAMPLE[9:], "position 8", "stage 1 slot 2 conv1", "is 0 but the slot is active")


def test_error_inactive_slot_not_00():
    # stage 1 slot 4 (indices 12, 13) is inactive (depth 3)
    _bad(EXAMPLE[:13] + "2" + EXAMPLE[14:], "position 13", "stage 1 slot 4 conv2", "inactive slots must be 00")


def test_error_width_code_out_of_range():
    _bad(EXAMPLE[:7] + "8" + EXAMPLE[8:], "position 7", "out of range 1..7")
    _bad(EXAMPLE[:5] + "9" + EXAMPLE[6:], "position 5", "stem width code 9")


def test_error_image_size_code():
    _bad("2" + EXAMPLE[1:], "position 0", "image-size code 2")


def test_error_positions_in_51_char_form():
    msg = _bad(EXAMPLE[1:8] + "0" + EXAMPLE[9:], "position 7", "position 8 of the 52-character form")
    assert "conv1" in msg


def test_tying_rule():
    assert tied_violation(parse_code(EXAMPLE)) is None
    untied = EXAMPLE[:7] + "2" + EXAMPLE[8:]  # stage-1 slot-1 conv2 != stem
    assert "stage 1 slot 1 conv2" in tied_violation(parse_code(untied))


def test_full_network_macs():
    full = FULL_SPACE.largest()
    assert full.depths == (5, 5, 8, 5)
    assert abs(count_cost(full, IMAGENET).macs / 1e9 - 5.28) / 5.28 < 0.01


def test_proxy_config_is_plain_configuration():
    full = FULL_SPACE.largest()
    d4 = NetConfig(1, 10, 4, "small", 28)  # proxy v2's widths
    plan = channel_plan(full, d4)
    assert plan.stem == 16 and plan.last == 128
    assert abs(count_cost(full, d4).macs / 1e6 - 86) < 1
    assert FMNIST28 == NetConfig(1, 10, 8, "small", 28)  # the proxy default since protocol v3
    plan8 = channel_plan(full, FMNIST28)
    assert plan8.stem == 8 and plan8.last == 64
    # stage-4 code 7 at divisor 4: 360 -> 90; at 8: 45
    a = parse_code("1" + "2222" + "1" + "1111000000" * 2 + "1111" + "00" * 6 + "7777000000")
    assert channel_plan(a, d4).blocks[-1].out == 90 and channel_plan(a, FMNIST28).blocks[-1].out == 45


def test_shortcuts_follow_rule():
    plan = channel_plan(FULL_SPACE.largest())
    assert [b.index for b in plan.blocks if b.projection] == [6, 11, 19]
    same_width = parse_code(EXAMPLE[:7] + "2" + EXAMPLE[8:])  # untied, but code 2 of 64 is still 64 wide
    assert not channel_plan(same_width).blocks[0].projection
    narrow = parse_code(EXAMPLE[:7] + "5" + EXAMPLE[8:])
    assert channel_plan(narrow).blocks[0].projection and channel_plan(narrow).blocks[1].projection


def test_official_45k(official_45k):
    data = json.loads(official_45k.read_text())
    assert len(data) == 45000
    macs = [count_cost(parse_code(v["arch"])).macs / 1e9 for v in data.values()]
    assert round(min(macs), 2) == 1.38
    assert round(statistics.median(macs), 2) == 2.96
    assert round(max(macs), 2) == 4.86
    archs = [parse_code(v["arch"]) for v in data.values()]
    assert all(OFFICIAL_SPACE.contains(a) for a in archs)
    assert len({a.depths for a in archs}) == 448


def test_decode_arch_tool(capsys):
    sys.path.insert(0, str(ROOT / "tools"))
    import decode_arch

    assert decode_arch.main([EXAMPLE, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["code"] == EXAMPLE and d["depths"] == [3, 4, 8, 3] and d["stem"] == 64
    assert len(d["blocks"]) == 18 and {"stage", "conv1", "conv2", "stride", "shortcut"} <= set(d["blocks"][0])
    assert d["macs"] == count_cost(parse_code(EXAMPLE)).macs and d["params"] == count_cost(parse_code(EXAMPLE)).params
    assert decode_arch.main([EXAMPLE[1:], "--json", "--input-size", "28", "--in-channels", "1", "--num-classes", "10",
                             "--width-divisor", "8", "--stem", "small"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["macs"] == count_cost(parse_code(EXAMPLE), FMNIST28).macs
    assert decode_arch.main(["12x"]) == 2
    assert "wrong length 3" in capsys.readouterr().err
    assert decode_arch.main([EXAMPLE]) == 0
    assert "projection" in capsys.readouterr().out
