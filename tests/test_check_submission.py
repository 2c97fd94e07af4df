"""tools/check_submission.py: the rules a submission must meet before it is sent."""
from __future__ import annotations

import json
import sys

import pytest

from conftest import ROOT, need, OFFICIAL_45K
from supernet.space import OFFICIAL_SPACE, iter_sample

sys.path.insert(0, str(ROOT / "tools"))
import check_submission  # noqa: E402

CODES = [a.code for a in iter_sample(OFFICIAL_SPACE, 4, seed=2)]


@pytest.fixture
def official(tmp_path):
    p = tmp_path / "official.json"
    p.write_text(json.dumps({f"arch{i + 1}": {"arch": c} for i, c in enumerate(CODES)}))
    return p


def sub(tmp_path, entries, name="sub.json"):
    p = tmp_path / name
    p.write_text(entries if isinstance(entries, str) else json.dumps(entries))
    return p


def good():
    return {f"arch{i + 1}": {"arch": c, "acc": 90.0 + i} for i, c in enumerate(CODES)}


def check(path, official, capsys):
    rc = check_submission.main([str(path), "--official", str(official)])
    return rc, capsys.readouterr()


def test_a_valid_submission_passes_with_one_line(tmp_path, official, capsys):
    entries = good()
    entries["arch2"]["arch"] = CODES[1][1:]  # the 51-character form is the same code
    rc, out = check(sub(tmp_path, entries), official, capsys)
    assert rc == 0 and len(out.out.strip().splitlines()) == 1 and "valid: 4 official keys" in out.out


@pytest.mark.parametrize("change,expect", [
    (lambda e: e.pop("arch3"), "1 official keys are missing"),
    (lambda e: e.update(arch9={"arch": CODES[0], "acc": 1.0}), "not in the official list"),
    (lambda e: e["arch1"].update(arch=CODES[1]), "is not the official"),
    (lambda e: e["arch1"].update(acc=True), "is not a finite number"),
    (lambda e: e["arch1"].update(acc="high"), "is not a finite number"),
    (lambda e: e["arch1"].update(note="x"), "fields other than arch and acc"),
    (lambda e: [v.update(acc=5.0) for v in e.values()], "constant ranking"),
])
def test_each_broken_rule_is_named(tmp_path, official, capsys, change, expect):
    entries = good()
    change(entries)
    rc, out = check(sub(tmp_path, entries), official, capsys)
    assert rc == 2 and "Traceback" not in out.err
    first, *details = out.err.strip().splitlines()
    assert first.startswith("error:") and all(d.startswith("  ") for d in details)
    assert expect in out.err


def test_nan_tokens_and_duplicate_keys_are_refused(tmp_path, official, capsys):
    text = json.dumps(good()).replace("90.0", "NaN")
    rc, out = check(sub(tmp_path, text), official, capsys)
    assert rc == 2 and "NaN" in out.err
    dup = '{"arch1": {"arch": "%s", "acc": 1}, "arch1": {"arch": "%s", "acc": 2}}' % (CODES[0], CODES[0])
    rc, out = check(sub(tmp_path, dup, "dup.json"), official, capsys)
    assert rc == 2 and "appears twice" in out.err


def test_the_official_45k_list_against_itself(tmp_path, capsys):
    official = need(OFFICIAL_45K)
    entries = json.loads(official.read_text())
    for i, v in enumerate(entries.values()):
        v["acc"] = float(i % 1000)
    rc, out = check(sub(tmp_path, entries), official, capsys)
    assert rc == 0 and "45000 official keys" in out.out
