"""Weight-sharing NAS for the CVPR 2022 NAS challenge ResNet48 space, in PaddlePaddle.

Importing the package first tunes the CPU math libraries, then imports paddle:
- Threads: Paddle sets OMP_NUM_THREADS to 1 when it is unset, and prints a warning when it is above 1.
  We use the available cores (under paddle.distributed.launch, cores / processes on this node: the
  launcher passes on the 1 that Paddle set in its own process), import paddle with 1 so it stays
  quiet, then give the math libraries the chosen count (``paddle.base.core.set_num_threads``). A count
  the user set wins.
- MKL_DEBUG_CPU_TYPE=5 on AMD CPUs: the MKL inside Paddle's CPU wheel otherwise takes a slow
  generic path there; this doubles conv/matmul speed on the development machines (BENCHMARKS.md).
- glibc malloc keeps large blocks in the heap instead of mmap-ing and unmapping every activation
  (M_MMAP_THRESHOLD 32 MB, no trimming): Paddle's CPU allocator frees each op's output straight back
  to malloc, and the fresh pages of a new mapping cost a page fault each; residual adds ran 4x
  slower for it (BENCHMARKS.md). Skipped when the user set MALLOC_MMAP_THRESHOLD_ themselves.
Both are defaults only: a value the user set wins.
"""
import ctypes
import os
import sys
import warnings


def _cpu_vendor() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def cpu_threads(env: dict[str, str] = os.environ) -> int:
    """Threads per process: the user's OMP_NUM_THREADS, else the cores shared among this node's processes."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local = int(env.get("PADDLE_LOCAL_SIZE") or 1)
    given = env.get("OMP_NUM_THREADS", "")
    if given.isdigit() and int(given) >= 1 and not (local > 1 and given == "1"):
        return int(given)
    return max(1, cores // max(1, local))


THREADS = cpu_threads()
if _cpu_vendor() == "AuthenticAMD":
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")



def _keep_large_blocks_in_heap() -> None:
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 << 20)
    libc.mallopt(m_trim_threshold, 1 << 30)


_keep_large_blocks_in_heap()
# Paddle warns on every import that it has no compiler cache; nothing here compiles.
warnings.filterwarnings("ignore", message="No ccache found")
# BatchNorm in training mode warns on every call that it tracks running statistics (it always has).
warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")
os.environ["OMP_NUM_THREADS"] = "1"  # Paddle's import warns about any other value
import paddle  # noqa: E402

os.environ["OMP_NUM_THREADS"] = str(THREADS)  # for processes started from here (DataLoader workers)
_set_threads = getattr(getattr(getattr(paddle, "base", None), "core", None), "set_num_threads", None)
if _set_threads is not None:  # every Paddle 3 build has it; a build without it keeps Paddle's default
    _set_threads(THREADS)

__version__ = "0.1.0"
