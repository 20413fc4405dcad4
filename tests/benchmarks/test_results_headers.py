"""Every file in `benchmarks/results/` names the command that wrote it: an existing script, arguments it accepts.

The rule (README, "Results"): each results file starts with the exact command line that produced it and the machine
load, and is written whole by that command. The first line is checked here; a script's arguments are checked by
running the script only as far as its own argument parser (argparse is stopped right after parsing), so nothing is
measured or written.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"

# Results files written before the rule, each rerun (with the header) by the issue that changes its numbers. The lead
# removes an entry when that results come in; the test below fails while a listed file already conforms, so
# the list cannot outlive its reason.
PENDING_REGENERATION: dict[str, str] = {
    # issue 13: rerun this round with the numbers the README quotes, but their scripts still write their own
    # two-line header instead of results_header(); switch them over and rerun (quiet machine)
}

# Stops a script right after its argparse parser accepted the arguments: prints a marker and exits 0.
PROBE = """
import argparse, os, runpy, sys
_parse = argparse.ArgumentParser.parse_args
def _stop(self, args=None, namespace=None):
    _parse(self, args, namespace)
    print("UMI-ARGUMENTS-ACCEPTED", flush=True)
    raise SystemExit(0)
argparse.ArgumentParser.parse_args = _stop
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(sys.argv[0]))  # as `python benchmarks/X.py` does
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _helper() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_results", ROOT / "benchmarks" / "_results.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["_results"] = module
    spec.loader.exec_module(module)
    return module


def check(md: Path) -> str:
    """'' when `md` conforms, else what is wrong (one line)."""
    first = md.read_text(encoding="utf-8").split("\n", 1)[0]
    try:
        header = _helper().parse_header(first)
    except ValueError as e:
        return str(e)
    script = ROOT / header.script
    if not script.is_file():
        return f"{header.script} does not exist"
    text = script.read_text(encoding="utf-8")
    # a script may parse its arguments in a shared helper it imports (`from _static_subset import run_cli`)
    helpers = [script.parent / f"{m}.py" for m in re.findall(r"^from (_\w+) import", text, flags=re.M)]
    if "argparse" not in text + "".join(h.read_text(encoding="utf-8") for h in helpers if h.is_file()):
        return f"{header.script} takes no arguments but the line gives {header.args}" if header.args else ""
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(script), *header.args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if probe.returncode != 0 or "UMI-ARGUMENTS-ACCEPTED" not in probe.stdout:
        tail = (probe.stderr.strip().splitlines() or ["(no output)"])[-1]
        return f"{header.script} does not accept {header.args}: {tail}"
    return ""


def _markdown() -> list[Path]:
    return sorted(RESULTS.glob("*.md"))


def test_the_helper_writes_a_line_it_reads_back() -> None:
    helper = _helper()
    line = helper.results_header(["benchmarks/static_reference.py", "--limit", "a b"]).splitlines()[0]
    parsed = helper.parse_header(line)
    assert parsed.script == "benchmarks/static_reference.py" and parsed.args == ["--limit", "a b"]
    assert len(parsed.load) == 3 and all(x >= 0 for x in parsed.load)
    with pytest.raises(ValueError, match="is not `Command:"):
        helper.parse_header("# Static evaluation")
    with pytest.raises(ValueError, match="does not start with `python benchmarks/"):
        helper.parse_header("Command: `umi eval static` · load average (`uptime`): 1.00, 1.00, 1.00")


@pytest.mark.parametrize("md", _markdown(), ids=lambda p: p.name)
def test_results_file_names_its_command(md: Path) -> None:
    problem = check(md)
    if md.name in PENDING_REGENERATION:
        assert problem, f"{md.name} now names its command: remove it from PENDING_REGENERATION"
        pytest.skip(f"{md.name}: pending regeneration by {PENDING_REGENERATION[md.name]} ({problem})")
    assert not problem, f"benchmarks/results/{md.name}: {problem}"


def test_pending_list_names_existing_files() -> None:
    assert set(PENDING_REGENERATION) <= {p.name for p in _markdown()}


def test_a_wrong_argument_or_a_missing_script_is_caught(tmp_path: Path) -> None:
    helper = _helper()
    good = tmp_path / "good.md"
    good.write_text(helper.results_header(["benchmarks/live_bfcl.py", "--limit", "2", "--report-only"]) + "# x\n")
    assert check(good) == ""
    bad = tmp_path / "bad.md"
    bad.write_text(helper.results_header(["benchmarks/live_bfcl.py", "--no-such-flag"]) + "# x\n")
    assert "does not accept ['--no-such-flag']" in check(bad) and "unrecognized arguments" in check(bad)
    gone = tmp_path / "gone.md"
    gone.write_text(helper.results_header(["benchmarks/nope.py"]) + "# x\n")
    assert check(gone) == "benchmarks/nope.py does not exist"
