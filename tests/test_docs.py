"""The commands the docs show name files that exist and only options their parsers accept (parsed, not run)."""
from __future__ import annotations

import functools
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_env

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LAUNCHER = "paddle.distributed.launch"
SKIP_MODULES = ("pip", "pytest")
# train_supernet.sh passes its arguments to train_supernet.py
WRAPPERS = {"train_supernet.sh": "train_supernet.py"}
# what follows `--` goes to another parser
PASSTHROUGH = {"tools/gt_campaign.py": ("pretrain.py", "run")}


def commands(text: str) -> list[str]:
    """``python ...`` and ``bash ...`` commands of a markdown text: code lines (continuations joined) and
    inline code spans."""
    out = []
    lines = text.replace("\\\n", " ").splitlines()
    for line in lines:
        code = line.strip()
        if line.startswith(("    ", "\t")) or code.startswith("$ "):
            out.append(code.removeprefix("$ "))
    out += re.findall(r"`([^`]*(?:python|bash) [^`]+)`", text)
    found = []
    for c in out:
        c = c.split("#")[0].split("&&")[-1].strip()  # a comment, or the install step before &&
        m = re.search(r"(?:^|\s)((?:python3?|bash) .*)$", c)
        if m:
            found.append(m.group(1))
    return found


@functools.lru_cache(maxsize=None)
def options_of(script: str, sub: str | None) -> tuple[frozenset[str], frozenset[str]]:
    """(option strings, subcommands) from ``script [sub] --help``."""
    cmd = [sys.executable, str(ROOT / script), *([sub] if sub else []), "--help"]
    r = subprocess.run(cmd, env=run_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{script} --help failed: {r.stderr[-500:]}"
    opts = frozenset(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", r.stdout))
    subs = re.search(r"\{([\w,-]+)\}", r.stdout)
    return opts, frozenset(subs.group(1).split(",")) if subs else frozenset()


def check(command: str) -> str | None:
    """Why ``command`` would not parse, or None."""
    try:
        tokens = shlex.split(command)
    except ValueError:
        tokens = command.split()
    if tokens[0] in ("python", "python3") and tokens[1:2] == ["-m"]:
        module = tokens[2]
        if module.split(".")[0] in SKIP_MODULES:
            return None
        if module != LAUNCHER:
            return f"unknown module {module}"
        rest = tokens[3:]
        while rest and not rest[0].endswith(".py"):
            rest = rest[2:] if rest[0].startswith("--") and len(rest) > 1 and not rest[1].endswith(".py") else rest[1:]
        tokens = ["python", *rest]
    if len(tokens) < 2:
        return None
    script = tokens[1]
    if script.startswith("-"):
        return None  # python -c ... and the like
    if not (ROOT / script).is_file():
        return f"{script} does not exist"
    target = WRAPPERS.get(Path(script).name, script)
    if not target.endswith(".py"):
        return None
    args = tokens[2:]
    if target != script:
        args = args[1:]  # the wrapper's first argument is the config
        args = ["-c", "CONFIG", *args]
    if "--" in args and target in PASSTHROUGH:
        args, passed = args[: args.index("--")], args[args.index("--") + 1:]
        problem = _bad(*PASSTHROUGH[target], passed)
        if problem:
            return f"{script} -- {problem}"
    return _bad(target, None, args, script)


def _bad(target: str, sub: str | None, args: list[str], shown: str | None = None) -> str | None:
    opts, subs = options_of(target, sub)
    if sub is None and args and args[0] in subs:
        sub = args[0]
        opts = opts | options_of(target, sub)[0]
    bad = [a.split("=")[0] for a in args if a.startswith("-") and not re.fullmatch(r"-?\d[\d.e-]*", a)
           and a.split("=")[0] not in opts and a != "-"]
    return f"{shown or target}: {', '.join(bad)} not accepted" if bad else None


def all_commands() -> list[tuple[str, str]]:
    return [(doc.name, c) for doc in DOCS if doc.is_file() for c in commands(doc.read_text(encoding="utf-8"))]


def test_the_docs_show_commands():
    assert len(all_commands()) >= 10


@pytest.mark.parametrize("doc,command", all_commands(), ids=lambda v: v[:60] if isinstance(v, str) else v)
def test_a_documented_command_parses(doc, command):
    problem = check(command)
    assert problem is None, f"{doc}: {command!r}: {problem}"
