"""The README runs as written.

- Its install commands are what CI runs (checked by reading ``.ci/run``, not by installing).
- Every other shell command in it runs, in order, in a scratch folder, with exit code 0
  (``nascsim`` and ``.venv/bin/nascsim`` as ``python -m nascsim`` of this tree); the main job
  prints the summary the README quotes.
- Its Python example runs as a doctest, then the examples of ``docs/plugins.md`` after it.
- It stays short and free of machine paths and process vocabulary, and so do the docs pages; its
  relative links resolve.
"""

import doctest
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import nascsim

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MAIN_JOB = "sweep --thresholds 10:40:5 --loss 0:0.5:0.1"
# pages that other work in progress adds; once they exist they are link-checked like the rest
def blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(), flags=re.S)


def commands() -> list[str]:
    """The commands of the README's shell blocks: one per line (backslash continuations joined),
    no comments."""
    out = []
    for line in "\n".join(blocks(README, "bash")).replace("\\\n", " ").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def ci_line() -> str:
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if "pip install" in line]
    assert len(lines) == 1, lines
    return lines[0].strip()


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [e.get("PYTHONPATH")])])
    return e


def run(command: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    """``command`` as written, with ``nascsim`` (or ``.venv/bin/nascsim``) run as this tree's
    ``python -m nascsim``."""
    words = shlex.split(command)
    assert words[0] in ("nascsim", ".venv/bin/nascsim"), command
    return subprocess.run([sys.executable, "-m", "nascsim", *words[1:]], cwd=cwd, env=env(), capture_output=True,
                          text=True, timeout=timeout)


def installs() -> list[str]:
    return [c for c in commands() if "pip install" in c]


def runnable() -> list[str]:
    return [c for c in commands() if "pip install" not in c]


# -- set-up --------------------------------------------------------------------------------------

def test_the_test_command_is_what_ci_runs():
    tests = [c for c in installs() if "pytest" in c]
    assert tests == [ci_line()]


def test_the_install_command_is_cis_without_the_extras():
    user = [c for c in installs() if "pytest" not in c]
    ci_install = ci_line().split(" && .venv/bin/python")[0]
    assert user == [ci_install.replace("'.[dev,train]'", ".")]
    assert "-c constraints.txt" in user[0]  # the pinned versions, as in CI


def test_the_main_job_follows_the_install():
    cmds = commands()
    assert cmds[1] == f".venv/bin/nascsim {MAIN_JOB}"


# -- the commands ----------------------------------------------------------------------------------

def test_every_other_command_runs_as_written(tmp_path):
    """In the README's order (``report`` reads the folder the ``sweep`` before it wrote)."""
    others = [c for c in runnable() if MAIN_JOB not in c]
    assert len(others) >= 8
    for command in others:
        r = run(command, tmp_path)
        assert r.returncode == 0, f"{command}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    assert (tmp_path / "small-sweep" / "summary.txt").exists() and (tmp_path / "bench-out" / "bench.md").exists()


@pytest.mark.slow
def test_the_main_job_runs_and_prints_the_summary_the_readme_quotes(tmp_path):
    """About a minute on two idle cores (3,150 runs)."""
    (main,) = [c for c in runnable() if MAIN_JOB in c]
    r = run(main, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    quoted = [b for b in blocks(README, "text") if "T_th" in b]
    assert len(quoted) == 1
    printed = [line.rstrip() for line in r.stdout.splitlines()]
    for line in quoted[0].splitlines():
        assert line.rstrip() in printed, line
    assert printed[0].startswith("accuracy surrogates:")


# -- Python ----------------------------------------------------------------------------------------

def test_the_python_examples_run_in_order(tmp_path, monkeypatch):
    """The README's Python block, then docs/plugins.md's, as a reader would run them (in a folder
    where ``tables/`` is the checkout's)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tables").symlink_to(ROOT / "tables")
    examples = [("README.md", b) for b in blocks(README, "python")]
    examples += [("docs/plugins.md", b) for b in blocks(ROOT / "docs" / "plugins.md", "python")]
    assert len(examples) >= 3
    globs: dict = {}
    try:
        for i, (name, block) in enumerate(examples):
            test = doctest.DocTestParser().get_doctest(block, globs, f"{name} #{i}", name, 0)
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
            runner.run(test, clear_globs=False)
            assert runner.summarize(verbose=False).failed == 0, f"{name} #{i}"
            globs = test.globs
    finally:
        if "nasc-margin" in nascsim.method_names():
            nascsim.unregister_method("nasc-margin")


# -- the text ----------------------------------------------------------------------------------------

def test_the_readme_fits_on_a_few_screens():
    assert len(README.read_text().splitlines()) <= 300


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_machine_paths_or_process_vocabulary(path):
    text = path.read_text()
    for pattern in (r"/work/", r"/tmp/", r"/home/", r"/root/", r"\bissue \d", r"\bissues? #?\d", r"#\d{1,4}\b",
                    r"\bthis round\b", r"\brun\(command="):
        assert not re.search(pattern, text, flags=re.I), (path.name, pattern)


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
        if re.match(r"[a-z]+://", target):
            continue
        resolved = (path.parent / target).resolve()
        assert resolved.exists(), (path.name, target)
