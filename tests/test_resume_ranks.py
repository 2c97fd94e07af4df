"""Resuming under the launcher: every rank must have found the same checkpoint, and starts from rank 0's weights."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, run_env

SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
import supernet, paddle
from supernet import checkpoint
from supernet.runtime import broadcast_state, setup
from supernet.train import check_same_resume
ctx = setup("cpu")
out = {{"rank": ctx.rank}}
layer = paddle.nn.Linear(3, 2)
with paddle.no_grad():
    layer.weight.set_value(paddle.full([3, 2], float(ctx.rank + 1)))
broadcast_state(ctx, layer)
out["weight"] = float(layer.weight.numpy().mean())
check_same_resume(ctx, 40, "ab" * 32, "ckpts")  # the same checkpoint everywhere: passes
try:  # rank 1 sees an older checkpoint (a node-local output folder)
    check_same_resume(ctx, 40 if ctx.rank == 0 else 20, "ab" * 32, "ckpts")
    out["refused"] = None
except checkpoint.CheckpointError as e:
    out["refused"] = str(e)
try:  # same step, another file
    check_same_resume(ctx, 40, ("ab" if ctx.rank == 0 else "cd") * 32, "ckpts")
    out["refused_sha"] = None
except checkpoint.CheckpointError as e:
    out["refused_sha"] = str(e)
open({out!r} + f".{{ctx.rank}}", "w").write(json.dumps(out))
"""


def test_ranks_that_found_different_checkpoints_are_refused_and_weights_come_from_rank0(tmp_path):
    script = tmp_path / "resume_ranks.py"
    result = tmp_path / "result"
    script.write_text(SCRIPT.format(root=str(ROOT), out=str(result)))
    r = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
                        str(tmp_path / "log"), str(script)], env=run_env(), capture_output=True, text=True, timeout=300)
    logs = "".join(p.read_text() for p in (tmp_path / "log").glob("workerlog.*"))
    assert r.returncode == 0, logs[-3000:]
    for rank in (0, 1):
        out = json.loads((tmp_path / f"result.{rank}").read_text())
        assert out["weight"] == 1.0  # rank 0's
        assert "must be one folder shared by every node" in out["refused"]
        assert "must be one folder shared by every node" in out["refused_sha"]
