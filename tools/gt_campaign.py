"""Grow a standalone ground-truth file: many (code, seed) runs of pretrain.py, N at once, resumable.

  python tools/gt_campaign.py --gt benchmarks/gt/v3.json --sample 16 --seeds 1,2 --jobs 2 \
      --work output/gt_campaign -- --width_divisor 8 --max_epoch 4 --warmup 0.5

Codes: ``--codes FILE`` (official JSON or a plain list), or ``--sample N``: a seeded sample of the
official 45k list spread evenly over MACs (smallest and largest always in), which keeps the codes the
GT file already holds, so a larger N grows a campaign. Everything after ``--`` is passed to
``pretrain.py run`` and defines the protocol, stored beside the GT file (``<name>.protocol.json``);
a GT file of another protocol is refused. Jobs whose seed the GT file already holds are skipped; a
killed job resumes from its checkpoint in ``--work``; each finished job merges top-1, test CE and
final train loss into the GT file under a lock. A job that fails, diverges or sees no data is
reported and never written. On CPU the cores are split between the jobs (``--threads`` each); on
GPUs each job gets one device. Timings go to ``<work>/campaign.jsonl`` and ``<gt name>.jobs.jsonl`` beside
the GT file (jobs per CPU-hour; benchmarks/gt_power.py --candidates reads them).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from supernet import archfile, groundtruth  # noqa: E402
from supernet.archfile import ArchFileError  # noqa: E402
from supernet.cli import ArgumentParser, entry_point, fail, nonneg_int, positive_int, writable_file  # noqa: E402
from supernet.outputs import FolderLock, OutputError  # noqa: E402
from supernet.runtime import setup_logging  # noqa: E402
from supernet.space import NetConfig, count_cost  # noqa: E402

log = logging.getLogger("gt_campaign")


@dataclass(frozen=True)
class Job:
    key: str
    code: str
    seed: int
    macs: int

    @property
    def name(self) -> str:
        return f"{self.code}_s{self.seed}"


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gt", required=True, help="ground-truth JSON to grow (created if absent)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--codes", help="official JSON or plain list of the codes to train")
    src.add_argument("--sample", type=positive_int, help="spread this many codes of the 45k list over MACs")
    p.add_argument("--sample-seed", type=nonneg_int, default=0)
    p.add_argument("--arch-list", help="official 45k JSON (default ../shared/data)")
    p.add_argument("--seeds", default="1,2", help="comma-separated training seeds, e.g. 1,2,3")
    p.add_argument("--jobs", type=positive_int, help="jobs at once (default: GPUs, else 2 on CPU)")
    p.add_argument("--threads", type=positive_int, help="CPU threads per job (default: cores / jobs)")
    p.add_argument("--work", default="output/gt_campaign", help="job folders (checkpoints, logs)")
    p.add_argument("--save-every-steps", type=nonneg_int, default=50, help="checkpoint cadence inside an epoch")
    p.add_argument("--order", choices=("seed", "code"), default="seed",
                   help="seed: every code once before any second seed (a campaign stopped early still covers "
                        "every code); code: all seeds of a code before the next (a stopped designed test still "
                        "has its finished codes with every seed, for seed agreement)")
    p.add_argument("--limit", type=positive_int, help="run at most this many jobs now")
    p.add_argument("--dry-run", action="store_true", help="list the jobs and exit")
    a = p.parse_args(own)
    try:
        a.seed_list = sorted({int(s) for s in a.seeds.split(",") if s.strip()})
    except ValueError:
        p.error(f"--seeds {a.seeds!r} is not a comma-separated list of whole numbers")
    if not a.seed_list or min(a.seed_list) < 0:
        p.error("--seeds needs at least one seed >= 0")
    for flag in ("--arch", "--seed", "--output_dir", "--gt_file", "--gt_key", "--resume"):
        if flag in passthrough:
            p.error(f"{flag} after -- is set by the campaign for each job")
    return a, passthrough


def job_protocol(passthrough: list[str]) -> tuple[dict, NetConfig]:
    """The protocol the passed-through pretrain options define (pretrain.py's own parser and defaults)."""
    import pretrain  # noqa: E402  (parses exactly as the jobs will)

    probe = pretrain.parse_args(["run", "--arch", "1" * 52, *passthrough])  # code unused; options checked
    cfg = pretrain.resolve(probe)
    return pretrain.protocol(probe, cfg), cfg


def choose(a: argparse.Namespace, cfg: NetConfig) -> dict:
    if a.codes:
        return archfile.read_archs(a.codes)
    official = archfile.official_45k_path(a.arch_list)
    if official is None:
        raise ArchFileError("--sample needs the official 45k file: pass --arch-list (not found in ../shared/data)")
    archs = archfile.read_archs(official)
    keep = archfile.read_archs(a.gt) if Path(a.gt).is_file() else {}
    return groundtruth.stratified_by_macs(archs, a.sample, a.sample_seed, cfg, keep)


def plan(a: argparse.Namespace, archs: dict, cfg: NetConfig) -> tuple[list[Job], int]:
    done = groundtruth.seeds_done(a.gt)
    jobs, skipped = [], 0
    pairs = ([(s, k) for k in archs for s in a.seed_list] if a.order == "code"  # see --order
             else [(s, k) for s in a.seed_list for k in archs])
    for s, key in pairs:
        arch = archs[key]
        if s in done.get(arch.code, set()):
            skipped += 1
        else:
            jobs.append(Job(key, arch.code, s, count_cost(arch, cfg).macs))
    return jobs, skipped


def gpu_count() -> int:
    try:
        import paddle

        return paddle.device.cuda.device_count() if paddle.device.is_compiled_with_cuda() else 0
    except Exception:  # noqa: BLE001 - no usable paddle build: CPU
        return 0


def start(job: Job, slot: int, a: argparse.Namespace, passthrough: list[str], gpus: int) -> subprocess.Popen:
    d = Path(a.work) / job.name
    d.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(ROOT / "pretrain.py"), "run", "--arch", job.code, "--seed", str(job.seed),
           "--output_dir", str(d), "--gt_file", str(a.gt), "--gt_key", job.key, "--resume",
           "--save_every_steps", str(a.save_every_steps), *passthrough]
    if "--eval_every" not in passthrough:
        cmd += ["--eval_every", "0"]  # the final evaluation is the result; per-epoch ones cost time
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)
        cmd += ["--device", "gpu"]
    else:
        env["OMP_NUM_THREADS"] = str(a.threads)
        cmd += ["--device", "cpu", "--num_workers", "0"]
    with open(d / "campaign.log", "a") as logf:  # the child keeps its own handle
        logf.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
        logf.flush()
        return subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)


def tail(path: Path, n: int = 3) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])[-600:]


def run(jobs: list[Job], a: argparse.Namespace, passthrough: list[str], gpus: int) -> list[str]:
    """Run ``jobs`` with ``a.jobs`` at once; returns the failures (one line each)."""
    from tqdm import tqdm

    from supernet import checkpoint  # imports paddle: not needed to refuse bad arguments

    failures: list[str] = []
    running: dict[int, tuple[Job, subprocess.Popen, float, bool]] = {}
    queue = list(jobs)
    record = Path(a.work) / "campaign.jsonl"
    jobs_log = Path(a.gt).with_name(Path(a.gt).stem + ".jobs.jsonl")
    bar = tqdm(total=len(jobs), desc="gt jobs", unit="job", dynamic_ncols=True)

    def stop(signum, _frame):
        for _, proc, _, _ in running.values():
            os.killpg(proc.pid, signal.SIGTERM)
        raise SystemExit(f"stopped by signal {signum}; run the same command again to resume")

    # a closed terminal (SIGHUP) stops the jobs too: orphans would go on training what a rerun trains again
    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        while queue or running:
            for slot in range(a.jobs):
                if slot not in running and queue:
                    job = queue.pop(0)
                    # a job that continues from a checkpoint ran only part of its training here: its wall time
                    # is not a job's cost (gt_power leaves such records out of the CPU minutes per job)
                    resumed = bool(checkpoint.list_checkpoints(Path(a.work) / job.name / "checkpoints"))
                    running[slot] = (job, start(job, slot, a, passthrough, gpus), time.time(), resumed)
            time.sleep(1.0)
            for slot, (job, proc, t0, resumed) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[slot]
                secs = time.time() - t0
                d = Path(a.work) / job.name
                rec = {"code": job.code, "key": job.key, "seed": job.seed, "macs": job.macs, "rc": proc.returncode,
                       "seconds": round(secs, 1), "resumed": resumed, "threads": a.threads, "jobs": a.jobs,
                       "gpus": gpus, "time": round(time.time(), 1)}
                result = d / "result.json"
                if proc.returncode == 0 and result.is_file():
                    res = json.loads(result.read_text())
                    rec.update(top1=res.get("top1", res.get("acc")), ce=res.get("ce"), train_loss=res.get("train_loss"))
                    log.info("%s seed %d: top-1 %.2f%%, CE %.4f, %.1f min", job.key, job.seed, rec["top1"],
                             rec["ce"] or float("nan"), secs / 60)
                else:
                    failures.append(f"{job.key} ({job.code}) seed {job.seed}: exit {proc.returncode}: "
                                    f"{tail(d / 'campaign.log')}")
                    log.error("FAILED %s", failures[-1])
                for path in (record, jobs_log):  # the work folder's, and the one kept beside the GT file
                    with open(path, "a") as f:
                        f.write(json.dumps(rec) + "\n")
                bar.update(1)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        bar.close()
    return failures


@entry_point
def main(argv: list[str] | None = None) -> int:
    setup_logging()
    a, passthrough = parse_args(argv)
    problem = writable_file(a.gt, "--gt")
    if problem:
        return fail(problem)
    try:
        protocol, cfg = job_protocol(passthrough)
        have = groundtruth.read_protocol(a.gt)
        if have is not None and groundtruth.differences(protocol, have):
            raise ArchFileError(f"{a.gt} was made with another protocol "
                                f"({'; '.join(groundtruth.differences(protocol, have))}); use another --gt")
        if not a.dry_run:
            groundtruth.bind_protocol(a.gt, protocol)
        archs = choose(a, cfg)
        jobs, skipped = plan(a, archs, cfg)
    except (ArchFileError, ValueError) as e:
        return fail(str(e))
    gpus = gpu_count()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    a.jobs = a.jobs or (gpus or min(2, cores))
    a.threads = a.threads or max(1, cores // a.jobs)
    if a.limit:
        jobs = jobs[:a.limit]
    log.info("%d codes x %d seeds: %d jobs to run, %d already in %s; %d at once (%s)", len(archs), len(a.seed_list),
             len(jobs), skipped, a.gt, a.jobs, f"{gpus} GPUs" if gpus else f"{a.threads} threads each")
    if a.dry_run:
        for j in jobs:
            print(f"{j.key}\t{j.code}\tseed {j.seed}\t{j.macs / 1e6:.1f} M MACs")
        return 0
    try:  # one campaign per work folder: a second would train the same jobs into the same job folders
        lock = FolderLock(a.work, "campaign").acquire()
    except OutputError as e:
        return fail(str(e))
    try:
        failures = run(jobs, a, passthrough, gpus)
    finally:
        lock.release()
    if failures:
        log.error("%d of %d jobs failed (nothing of theirs was written to %s):\n  %s", len(failures), len(jobs),
                  a.gt, "\n  ".join(failures))
        return 1
    log.info("all %d jobs done; %s holds %d codes", len(jobs), a.gt, len(archfile.read_entries(a.gt))
             if Path(a.gt).is_file() else 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
