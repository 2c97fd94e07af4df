"""Split, merge and sample arch files (official JSON form).

  python tools/arch_files.py split ../shared/data/CVPR_2022_NAS_Track1_test.json 8 parts/
  python tools/arch_files.py merge submission.json out*/submission.s*.json --order ../shared/data/CVPR_2022_NAS_Track1_test.json
  python tools/arch_files.py sample --space official45k -n 100 --seed 0 -o sample.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from supernet import archfile  # noqa: E402
from supernet.runtime import atomic_write_json  # noqa: E402
from supernet.cli import ArgumentParser, entry_point, fail, nonneg_int, positive_int, writable_file  # noqa: E402
from supernet.space import SPACES, get_space, iter_sample  # noqa: E402


def meta_of(path: str | Path) -> Path:
    """The record eval_subnets.py writes beside a submission (``<name>.meta.json``)."""
    return Path(path).with_name(Path(path).stem + ".meta.json")


def merged_meta(parts: list[str]) -> dict | None:
    """The record of a merge of scored shards: the parts' records must all exist and agree on the checkpoint,
    the settings, the network and the ranking (else the scores are not comparable and are not merged);
    None when no part has one (plain arch files)."""
    import json

    metas = {}
    for f in parts:
        m = meta_of(f)
        if m.is_file():
            try:
                metas[f] = json.loads(m.read_text(encoding="utf-8"))
            except (OSError, ValueError, UnicodeDecodeError) as e:
                raise archfile.ArchFileError(f"{m}: not a readable record of {f}'s scores ({e})") from e
    if not metas:
        return None
    bare = [f for f in parts if f not in metas]
    if bare:
        raise archfile.ArchFileError(f"{bare[0]} has no {meta_of(bare[0]).name} but other parts do: its scores "
                                     "cannot be shown to come from the same supernet and settings")
    fields = ("checkpoint_sha256", "settings", "network", "rank_by")
    first, ref = next(iter(metas.items()))
    for f, m in metas.items():
        for k in fields:
            if m.get(k) != ref.get(k):
                raise archfile.ArchFileError(f"{f} and {first} were scored with different {k} "
                                             f"({meta_of(f).name}): not merged")
    return {k: ref.get(k) for k in fields} | {"merged_from": len(parts)}


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split", help="split into N contiguous parts part1.json ... partN.json")
    s.add_argument("file")
    s.add_argument("n", type=positive_int)
    s.add_argument("out_dir")
    m = sub.add_parser("merge", help="merge official-form files (e.g. shard submissions) into one")
    m.add_argument("out")
    m.add_argument("parts", nargs="+")
    m.add_argument("--order", help="order keys like this file, and require all of its keys")
    r = sub.add_parser("sample", help="sample distinct codes from a search space")
    r.add_argument("--space", choices=sorted(SPACES), default="official45k")
    r.add_argument("-n", type=positive_int, required=True)
    r.add_argument("--seed", type=nonneg_int, default=0)
    r.add_argument("-o", "--out", required=True)
    a = p.parse_args(argv)
    if a.cmd in ("merge", "sample"):
        problem = writable_file(a.out, "output")
        if not problem and a.cmd == "merge":
            inputs = {Path(f).resolve() for f in [*a.parts, a.order] if f}
            if Path(a.out).resolve() in inputs:
                problem = f"output {a.out} is also an input; write the merge to a new file"
        if problem:
            return fail(problem)
    if a.cmd == "sample" and a.n > 1_000_000:
        return fail(f"-n {a.n}: at most 1000000 codes per file")
    try:
        if a.cmd == "split":
            for path in archfile.split_file(a.file, a.n, a.out_dir):
                print(path)
        elif a.cmd == "merge":
            meta = merged_meta(a.parts)
            n = archfile.merge_files(a.parts, a.out, a.order)
            if meta is not None:
                atomic_write_json(meta_of(a.out), {"codes": n, **meta})
            print(f"merged {n} entries into {a.out}")
        else:
            archs = {f"arch{i + 1}": x for i, x in enumerate(iter_sample(get_space(a.space), a.n, a.seed))}
            archfile.write_official(a.out, archs)
            print(f"wrote {len(archs)} codes of space {a.space} to {a.out}")
    except archfile.ArchFileError as e:
        return fail(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
