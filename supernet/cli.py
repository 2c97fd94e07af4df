"""Command-line plumbing shared by every entry point: one-line errors, exit 2, checked numbers.

A bad input must end in exit code 2 and one readable line that names the option or file and the rule
it breaks, never a traceback. ``ArgumentParser`` prints argparse's own errors that way, and the type
helpers turn nonsense numbers (a batch size of 0, epochs below 1) into such errors up front.
"""
from __future__ import annotations

import argparse
import math
import os
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
