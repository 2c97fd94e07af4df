"""benchmarks/ranking.py's recipes: every variant is a valid config that differs from the default's."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import ranking  # noqa: E402
from supernet.config import load_config  # noqa: E402

BUDGET = ["data.train_images=10000", "train.epochs=6", "train.eval_codes=0"]


def _config(name: str) -> dict:
    fields = ranking.budget_fields(6, Path("full/model.pdparams"))
    config = ROOT / "configs" / ranking.BASE_CONFIG.get(name, "fmnist_sandwich.yaml")
    return load_config(config, BUDGET + [ranking.fill(o, fields) for o in ranking.VARIANTS[name]])


@pytest.mark.parametrize("name", sorted(ranking.VARIANTS))
def test_variant_is_a_valid_config_that_changes_training(name):
    cfg = _config(name)  # unknown keys and bad values are refused by load_config
    unfilled = [v for sec in cfg.values() if isinstance(sec, dict) for v in sec.values()
                if isinstance(v, str) and re.search(r"\{[a-z_]+\}", v)]
    assert not unfilled, f"placeholders left: {unfilled}"
    if name == "default":
        assert ranking.VARIANTS[name] == []
    else:
        assert cfg != _config("default"), f"{name} trains exactly like the default"


def test_long_variant_is_the_default_on_all_images():
    long, default = _config("long"), _config("default")
    assert long["data"]["train_images"] is None and default["data"]["train_images"] == 10000
    long["data"]["train_images"] = 10000
    assert long == default
