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
from supernet.space import SPACES, get_space, iter_sample  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split", help="split into N contiguous parts part1.json ... partN.json")
    s.add_argument("file")
    s.add_argument("n", type=int)
    s.add_argument("out_dir")
    m = sub.add_parser("merge", help="merge official-form files (e.g. shard submissions) into one")
    m.add_argument("out")
    m.add_argument("parts", nargs="+")
    m.add_argument("--order", help="order keys like this file, and require all of its keys")
    r = sub.add_parser("sample", help="sample distinct codes from a search space")
    r.add_argument("--space", choices=sorted(SPACES), default="official45k")
    r.add_argument("-n", type=int, required=True)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("-o", "--out", required=True)
    a = p.parse_args(argv)
    try:
        if a.cmd == "split":
            for path in archfile.split_file(a.file, a.n, a.out_dir):
                print(path)
        elif a.cmd == "merge":
            n = archfile.merge_files(a.parts, a.out, a.order)
            print(f"merged {n} entries into {a.out}")
        else:
            archs = {f"arch{i + 1}": x for i, x in enumerate(iter_sample(get_space(a.space), a.n, a.seed))}
            archfile.write_official(a.out, archs)
            print(f"wrote {len(archs)} codes of space {a.space} to {a.out}")
    except archfile.ArchFileError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
