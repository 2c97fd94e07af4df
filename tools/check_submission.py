"""Check a submission file before it is sent: the official keys, the official codes, a finite score each.

  python tools/check_submission.py output/eval45k/submission.json
  python tools/check_submission.py SUB --official ../shared/data/CVPR_2022_NAS_Track1_test.json

Rules: a JSON object (no NaN or Infinity tokens, no key twice) with exactly the official list's keys;
each entry ``{"arch": code, "acc": number}`` whose code is the official one for its key (the 51- and
52-character forms are the same code); every ``acc`` a finite number (not true/false, not a string); not
every score the same (a constant ranking has no Kendall tau). Exit 0 with a one-line summary, or exit 2
with one line and the first problems indented below it.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from supernet.archfile import ArchFileError, official_45k_path, read_entries  # noqa: E402
from supernet.cli import ArgumentParser, clip, entry_point, fail  # noqa: E402
from supernet.space import ArchCodeError, parse_code  # noqa: E402

SHOWN = 10


def _no_constants(name: str):
    raise ValueError(f"a bare {name} token (not JSON)")


def problems(sub: Path, official: Path) -> tuple[list[str], dict]:
    """Every rule ``sub`` breaks against ``official`` (in file order), and a summary of what it holds."""
    out: list[str] = []
    try:
        text = sub.read_text(encoding="utf-8")
        obj = json.loads(text, parse_constant=_no_constants)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return [f"{sub} is not readable strict JSON: {clip(e, 200)}"], {}
    if not isinstance(obj, dict):
        return [f"{sub} is a JSON {type(obj).__name__}, not an object of {{key: {{arch, acc}}}}"], {}
    try:
        read_entries(sub)  # refuses a key given twice
        ref = read_entries(official)
    except ArchFileError as e:
        return [str(e)], {}
    missing = [k for k in ref if k not in obj]
    extra = [k for k in obj if k not in ref]
    if missing:
        out.append(f"{len(missing)} official keys are missing, e.g. {', '.join(map(clip, missing[:3]))}")
    if extra:
        out.append(f"{len(extra)} keys are not in the official list, e.g. {', '.join(map(clip, extra[:3]))}")
    accs = []
    for k, v in obj.items():
        if k not in ref:
            continue
        if not isinstance(v, dict):
            out.append(f"{clip(k)}: {clip(v)} is not an object with 'arch' and 'acc'")
            continue
        fields = set(v) - {"arch", "acc"}
        if fields:
            out.append(f"{clip(k)}: fields other than arch and acc: {', '.join(sorted(map(clip, fields)))}")
        try:
            if parse_code(str(v.get("arch", ""))).code != parse_code(ref[k]["arch"]).code:
                out.append(f"{clip(k)}: code {clip(v.get('arch'))} is not the official {ref[k]['arch']}")
        except ArchCodeError as e:
            out.append(f"{clip(k)}: {e}")
        acc = v.get("acc")
        if isinstance(acc, bool) or not isinstance(acc, (int, float)) or not math.isfinite(acc):
            out.append(f"{clip(k)}: 'acc' {clip(repr(acc))} is not a finite number")
        else:
            accs.append(float(acc))
    if accs and len(set(accs)) == 1 and len(accs) > 1:
        out.append(f"every score is {accs[0]}: a constant ranking has no Kendall tau")
    summary = {"keys": len(obj), "official": len(ref), "scores": len(accs),
               "distinct": len(set(accs)), "min": min(accs, default=None), "max": max(accs, default=None)}
    return out, summary


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__)
    p.add_argument("submission")
    p.add_argument("--official", help="the official arch list (default: $NAS_TRACK1_JSON or ../shared/data)")
    a = p.parse_args(argv)
    official = official_45k_path(a.official)
    if official is None:
        return fail(f"--official {a.official} does not exist" if a.official else
                    "the official list was not found: pass --official (or set NAS_TRACK1_JSON)")
    sub = Path(a.submission)
    if not sub.is_file():
        return fail(f"{sub} does not exist")
    found, s = problems(sub, official)
    if found:
        more = f" (first {SHOWN} shown)" if len(found) > SHOWN else ""
        print(f"error: {sub} is not a valid submission: {len(found)} problem(s){more}", file=sys.stderr)
        for line in found[:SHOWN]:
            print(f"  {line}", file=sys.stderr)
        return 2
    print(f"{sub}: valid: {s['keys']} official keys and codes, every score finite ({s['distinct']} distinct, "
          f"{s['min']:.4g} to {s['max']:.4g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
