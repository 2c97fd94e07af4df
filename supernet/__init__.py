"""Weight-sharing NAS for the CVPR 2022 NAS challenge ResNet48 space, in PaddlePaddle.

Importing the package first sets the CPU thread count when the user has not: Paddle would
otherwise set OMP_NUM_THREADS=1 on import. Under paddle.distributed.launch the launcher sets it.
"""
import os

if "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                        else (os.cpu_count() or 1))

__version__ = "0.1.0"
