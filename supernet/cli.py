"""Command-line plumbing shared by every entry point: one-line errors, exit 2, checked numbers.

A bad input must end in exit code 2 and one readable line that names the option or file and the rule
it breaks, never a traceback. ``ArgumentParser`` prints argparse's own errors that way, and the type
helpers turn nonsense numbers (a batch size of 0, epochs below 1) into such errors up front.
"""
from __future__ import annotations

import argparse
import functools
import math
import os
import signal
import sys
from pathlib import Path
from typing import Callable, NoReturn

MAX_SHOWN = 80  # a 100 kB "code" must not be echoed whole into an error


def clip(text: object, n: int = MAX_SHOWN) -> str:
    """``text`` shortened for an error message."""
    s = str(text)
    return s if len(s) <= n else f"{s[:n]}... ({len(s)} characters)"


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error (``prog: error: ...``) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def fail(message: str) -> int:
    """Print one error line and return exit code 2 (``return fail(...)`` in a ``main``)."""
    print(f"error: {message}", file=sys.stderr)
    return 2


class Stopped(BaseException):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C (``finally`` blocks close journals and locks)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum: int, _frame) -> None:
    raise Stopped(signum)


def _installed(dist: str) -> bool:
    from importlib import metadata

    try:
        metadata.distribution(dist)
        return True
    except metadata.PackageNotFoundError:
        return False


def _nvidia_visible() -> bool:
    """An NVIDIA GPU this process may use: the driver lists one, and CUDA_VISIBLE_DEVICES does not hide all."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return (gpus.is_dir() and any(gpus.iterdir())) or any(Path("/dev").glob("nvidia[0-9]*"))


def _paddle_has_cuda() -> bool:
    import paddle

    return bool(paddle.device.is_compiled_with_cuda())


GPU_SETUP = ("pip uninstall -y paddlepaddle paddlepaddle-gpu, then install the one build you want and "
             "pip install -r requirements-common.txt (README, GPU set-up)")


def install_problem() -> str | None:
    """Why this Paddle installation would silently run the wrong build: both builds installed over each
    other (they share the ``paddle`` package, so the last one installed wins file by file), or a GPU the
    CPU build cannot use. Checked by every command before it starts."""
    if _installed("paddlepaddle") and _installed("paddlepaddle-gpu"):
        return f"both paddlepaddle and paddlepaddle-gpu are installed (one overwrote the other): {GPU_SETUP}"
    if _nvidia_visible() and not _paddle_has_cuda():
        return ("an NVIDIA GPU is visible but the installed Paddle is the CPU build, so everything would run on the "
                f"CPU: {GPU_SETUP}; to use the CPU on purpose, set CUDA_VISIBLE_DEVICES=")
    return None


def entry_point(main: Callable[..., int]) -> Callable[..., int]:
    """Wrap a command's ``main``: an installation that would run the wrong Paddle build is refused first
    (``install_problem``); what the machine refuses (disk full, read-only folder, no permission)
    becomes one line and exit 2, and Ctrl-C, SIGTERM or SIGHUP one line and exit 128 + the signal, with
    no traceback (and without Paddle's C++ "FatalError" banner, whose SIGTERM handler is replaced).
    Everything the commands write is atomic or journaled, so what was finished is kept and the same
    command resumes."""
    @functools.wraps(main)
    def run(argv: list[str] | None = None) -> int:
        problem = install_problem()
        if problem:
            return fail(problem)
        old = {}
        for s in (signal.SIGTERM, signal.SIGHUP):
            try:
                old[s] = signal.signal(s, _raise_stopped)
            except ValueError:  # not the main thread (a test calling main from a worker thread)
                pass
        try:
            return main(argv)
        except (KeyboardInterrupt, Stopped) as e:
            signum = getattr(e, "signum", signal.SIGINT)
            print(f"stopped by {signal.Signals(signum).name}: finished work is kept; run the same command "
                  "(with --resume where it has one) to continue", file=sys.stderr)
            return 128 + int(signum)
        except OSError as e:
            where = f"{clip(e.filename)}: " if e.filename else ""
            return fail(f"{where}{e.strerror or e}; nothing finished was lost, fix this and run the same command again")
        finally:
            for s, h in old.items():
                signal.signal(s, h)
    return run


def _number(kind: type, low: float | None, high: float | None, low_open: bool, what: str) -> Callable[[str], float]:
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{clip(text)!r} is not {'a whole number' if kind is int else 'a number'}")
        if kind is float and not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if low is not None and (v <= low if low_open else v < low):
            raise argparse.ArgumentTypeError(f"{text} must be {what}")
        if high is not None and v > high:
            raise argparse.ArgumentTypeError(f"{text} must be {what}")
        return v
    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


positive_int = _number(int, 1, None, False, ">= 1")
nonneg_int = _number(int, 0, None, False, ">= 0")
positive_float = _number(float, 0.0, None, True, "> 0")
nonneg_float = _number(float, 0.0, None, False, ">= 0")
fraction = _number(float, 0.0, 1.0, False, "between 0 and 1")


def shard(text: str) -> tuple[int, int]:
    """``i/n`` (share i of n, 0 <= i < n) as an argparse type."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes i/n (e.g. 0/8), got {clip(text)!r}") from None
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"{text}: need 0 <= i < n")
    return i, n


def writable_file(path: str | Path, option: str) -> str | None:
    """Why ``path`` cannot be written as an output file (checked before hours of work), or None."""
    p = Path(path)
    if p.is_dir():
        return f"{option} {clip(p)} is a folder, not a file"
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{option} {clip(p)}: {parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        return f"{option} {clip(p)} is not writable"
    return None
