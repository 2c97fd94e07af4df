"""Weight-sharing NAS for the CVPR 2022 NAS challenge ResNet48 space, in PaddlePaddle.

Importing the package first tunes the CPU math libraries, before paddle is imported:
- OMP_NUM_THREADS: Paddle sets it to 1 when unset; we set it to the available cores (under
  paddle.distributed.launch the launcher sets it per process and we leave it alone).
- MKL_DEBUG_CPU_TYPE=5 on AMD CPUs: the MKL inside Paddle's CPU wheel otherwise takes a slow
  generic path there; this doubles conv/matmul speed on the development machines (BENCHMARKS.md).
Both are defaults only: a value the user set wins.
"""
import os


def _cpu_vendor() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


if "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                        else (os.cpu_count() or 1))
if _cpu_vendor() == "AuthenticAMD":
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")

__version__ = "0.1.0"
