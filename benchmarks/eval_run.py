"""What a scoring run cost, read back from its journals: wall time, subnets per hour, and each process's
resident memory over its first and last --window subnets (flat memory: growth under 10 %).

  python benchmarks/eval_run.py output/eval45k --archs ../shared/data/CVPR_2022_NAS_Track1_test.json \
      --out benchmarks/results/eval45k.json

Every scored subnet's journal record carries its seconds (``s``), finish time (``end``), process id and
resident memory. A process is one (journal, pid) pair, so a run killed and resumed shows as two; wall
time is the union of the processes' busy intervals (first subnet started to last finished), so the time
between a kill and its resume is not counted, nor each process's start-up (data caching, seconds).
Journals compressed with xz (``journal*.jsonl.xz``, as committed under benchmarks/results) are read too.
"""
from __future__ import annotations

import argparse
import json
import lzma
import sys
from pathlib import Path

from common import print_table, union_seconds, write_json

from supernet.archfile import ArchFileError, read_archs


class RunError(ValueError):
    pass


def read_run(folder: Path) -> tuple[dict, list[dict]]:
    """The run's header (all journals must share it) and every record, tagged with its journal's name."""
    header, records = None, []
    paths = sorted(folder.glob("journal*.jsonl")) + sorted(folder.glob("journal*.jsonl.xz"))
    if not paths:
        raise RunError(f"{folder}: no journal*.jsonl(.xz) (not a scoring output folder)")
    twice = [p.name for p in paths if p.suffix == ".xz" and p.with_suffix("") in paths]
    if twice:
        raise RunError(f"{folder}: {twice[0]} and its uncompressed copy are both there; keep one")
    for p in paths:
        try:
            raw = lzma.decompress(p.read_bytes()) if p.suffix == ".xz" else p.read_bytes()
        except lzma.LZMAError as e:
            raise RunError(f"{p}: not an xz file ({e})") from e
        try:
            lines = raw.decode("utf-8").splitlines()
            head = json.loads(lines[0])["header"]
            recs = [json.loads(line) for line in lines[1:] if line.strip()]
        except (IndexError, KeyError, TypeError, ValueError) as e:
            raise RunError(f"{p}: not a scoring journal ({e})") from e
        if header is not None and head != header:
            raise RunError(f"{p}: written by another checkpoint or settings than {paths[0].name}")
        header = head
        for r in recs:
            if not all(k in r for k in ("end", "pid", "s")):
                raise RunError(f"{p}: records without end/pid (written before journals recorded them); "
                               "time such a run by hand")
            records.append({**r, "journal": p.name.removesuffix(".xz")})
    return header, records


def summarise(header: dict, records: list[dict], window: int) -> dict:
    procs: dict[tuple[str, int], list[dict]] = {}
    for r in records:
        procs.setdefault((r["journal"], r["pid"]), []).append(r)
    rows, spans = [], []
    for (jname, pid), rs in procs.items():
        rs.sort(key=lambda r: r["end"])
        start, stop = min(r["end"] - r["s"] for r in rs), rs[-1]["end"]
        spans.append((start, stop))
        rss = [r["rss_mb"] for r in rs if r.get("rss_mb") is not None]
        first, last = (max(rss[:window]), max(rss[-window:])) if rss else (None, None)
        rows.append({"journal": jname, "pid": pid, "subnets": len(rs), "hours": (stop - start) / 3600,
                     "subnets_per_hour": len(rs) / max(1e-9, stop - start) * 3600,
                     "rss_first_mb": first, "rss_last_mb": last,
                     "rss_growth": (last / first - 1) if first and len(rs) >= 2 * window else None})
    wall = union_seconds(spans)
    codes = len({r["arch"] for r in records})
    longest = max(rows, key=lambda r: r["subnets"])
    growths = [r["rss_growth"] for r in rows if r["rss_growth"] is not None]
    s = header.get("settings", {})
    return {"codes": codes, "wall_hours": wall / 3600, "subnets_per_hour": codes / max(1e-9, wall) * 3600,
            "processes": len(rows), "resumed": len(rows) - len({r["journal"] for r in rows}),
            "val_images": s.get("val_images"), "calib_batches": s.get("calib_batches"), "engine": s.get("backend"),
            "rss_window": window, "rss_first_mb": longest["rss_first_mb"], "rss_last_mb": longest["rss_last_mb"],
            "rss_max_growth": max(growths) if growths else None,
            "supernet_sha256": header.get("checkpoint_sha256"), "per_process": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="eval_subnets.py --out folder")
    p.add_argument("--archs", help="the code list scored: say whether every code is in the journals")
    p.add_argument("--window", type=int, default=1000, help="subnets at each end of a process for the RSS figures")
    p.add_argument("--out", help="write the summary JSON here")
    a = p.parse_args(argv)
    try:
        header, records = read_run(Path(a.folder))
        if not records:
            raise RunError(f"{a.folder}: the journals hold no scored subnet yet")
        res = summarise(header, records, a.window)
        if a.archs:
            want = {v.code for v in read_archs(a.archs).values()}
            done = {r["arch"] for r in records}
            res["complete"] = want <= done
            res["missing"] = len(want - done)
    except (RunError, ArchFileError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_table("processes (journal, pid)", res["per_process"], list(res["per_process"][0]))
    print_table("run", [{k: v for k, v in res.items() if k != "per_process"}],
                [k for k in res if k != "per_process"])
    if a.out:
        write_json(a.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
