"""The first line of every file in `benchmarks/results/`: the command that wrote it and the machine load.

A number in this project is what a named command printed. Each benchmark script starts the Markdown it writes with
`results_header()`, so a reader can rerun the exact command and judge the timing against how busy the shared
machine was; `tests/benchmarks/test_results_headers.py` parses that line back with `parse_header` and checks that
the script exists and accepts the arguments.

    from _results import results_header      # scripts run as `python benchmarks/X.py`, so this folder is on sys.path
    md.write_text(results_header() + body)
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = re.compile(r"^Command: `(?P<command>[^`]+)` · load average \(`uptime`\): (?P<load>[0-9., ]+)$")


@dataclass(frozen=True)
class Header:
    """A parsed first line: the script (relative to the checkout) and its arguments."""

    script: str
    args: list[str]
    load: tuple[float, float, float]


# Environment variables that change what a benchmark reads; set ones are written before the command.
RECORDED_ENV = ("UMI_SHARED_DATA",)


def command_line(argv: list[str] | None = None) -> str:
    """`[UMI_SHARED_DATA=…] python benchmarks/X.py ARGS` for the running script, the script path relative to the
    checkout so it reruns anywhere, and the data location when it was not the default `../shared/data`."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve()
    try:
        shown = script.relative_to(ROOT).as_posix()
    except ValueError:
        shown = script.as_posix()
    env = [f"{k}={os.environ[k]}" for k in RECORDED_ENV if os.environ.get(k)]
    return shlex.join([*env, "python", shown, *argv[1:]])


def shared_data() -> Path:
    """`../shared/data` beside the checkout, or `$UMI_SHARED_DATA` (as the test suite reads it)."""
    return Path(os.environ.get("UMI_SHARED_DATA", ROOT.parent / "shared" / "data"))


def results_header(argv: list[str] | None = None) -> str:
    """The line every results file starts with, and a blank line after it.

    The load is the 1/5/15-minute load average `uptime` prints (read from the same kernel counters); on a 2-core
    machine anything near 2 means another job shared the CPUs."""
    one, five, fifteen = os.getloadavg()
    return f"Command: `{command_line(argv)}` · load average (`uptime`): {one:.2f}, {five:.2f}, {fifteen:.2f}\n\n"


def parse_header(line: str) -> Header:
    """The inverse of `results_header`'s first line; a `ValueError` that says what is wrong otherwise."""
    m = HEADER.match(line.rstrip("\n"))
    if m is None:
        raise ValueError(
            f"first line {line[:120]!r} is not `Command: `python benchmarks/X.py ARGS` · load average (`uptime`): "
            "A, B, C` (write it with benchmarks/_results.py: results_header())"
        )
    words = shlex.split(m["command"])
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        words = words[1:]  # recorded environment (RECORDED_ENV)
    if len(words) < 2 or words[0] != "python" or not words[1].startswith("benchmarks/"):
        raise ValueError(f"command {m['command']!r} does not start with `python benchmarks/<script>.py`")
    load = tuple(float(x) for x in m["load"].split(","))
    if len(load) != 3:
        raise ValueError(f"load average {m['load']!r} is not three numbers")
    return Header(script=words[1], args=words[2:], load=(load[0], load[1], load[2]))
