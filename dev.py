#!/usr/bin/env python3
"""Set the project up and run it: the two commands of the README, and a few more for developers.

    python3 dev.py demo            run the GPU training window DAG against the bundled Hub emulator
    python3 dev.py test            run the whole test suite
    python3 dev.py check           formatter, linter and strict type check
    python3 dev.py run CMD ...     run a command inside the project's environment (benchmarks, tools)
    python3 dev.py lock            re-resolve the locked dependency files (needs the package index)

Each command creates its virtual environment under ``.venv/`` on first use and installs the locked
dependencies; it re-installs only when a lock file or the package metadata changed. Pick the
Airflow line with ``--airflow 3.1`` or ``--airflow 3.3`` (default), or ``SPACES_AIRFLOW=3.1``.
Only the standard library is used here, so that a machine with nothing but Python can start.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENVS = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements"
# The installer is pinned like everything else; it lives in a venv of its own so that syncing a
# project environment never uninstalls it.
UV_PIN = "uv==0.13.9"
AIRFLOW_LINES = ("3.1", "3.3")
DEFAULT_AIRFLOW = "3.3"
LOCK_PYTHON_FLOOR = "3.10"


def _say(message: str) -> None:
    print(f"[dev] {message}", file=sys.stderr, flush=True)


def _run(cmd: list[str], **kwargs) -> int:
    return subprocess.call([str(c) for c in cmd], **kwargs)


def _check(cmd: list[str], **kwargs) -> None:
    code = _run(cmd, **kwargs)
    if code:
        raise SystemExit(f"[dev] command failed with exit code {code}: {' '.join(map(str, cmd))}")


def _bin(env: Path, name: str) -> Path:
    return env / ("Scripts" if os.name == "nt" else "bin") / name


def _uv() -> Path:
    tools = VENVS / "tools"
    uv = _bin(tools, "uv")
    if not uv.exists():
        _say(f"first run: creating {tools.relative_to(ROOT)} with {UV_PIN}")
        venv.EnvBuilder(with_pip=True, clear=True).create(tools)
        _check([_bin(tools, "python"), "-m", "pip", "install", "--quiet", UV_PIN])
    return uv


def _lock_file(line: str) -> Path:
    return REQUIREMENTS / f"airflow-{line}.txt"


def _fingerprint(line: str) -> str:
    digest = hashlib.sha256()
    for path in (_lock_file(line), ROOT / "setup.cfg", ROOT / "pyproject.toml", Path(__file__)):
        digest.update(path.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def ensure_env(line: str) -> Path:
    """Create or refresh ``.venv/airflow-<line>`` from its lock file; return its python."""
    env = VENVS / f"airflow-{line}"
    marker = env / ".spaces-fingerprint"
    wanted = _fingerprint(line)
    if marker.exists() and marker.read_text() == wanted:
        return _bin(env, "python")

    uv = _uv()
    _say(f"installing the locked dependencies for Airflow {line} into {env.relative_to(ROOT)} ...")
    _check([uv, "venv", "--quiet", "--allow-existing", "--python", sys.executable, env])
    python = _bin(env, "python")
    # uv does not read pip's configuration; the lock names exact versions from the package index.
    _check([uv, "pip", "sync", "--quiet", "--python", python, _lock_file(line)])
    _check([uv, "pip", "install", "--quiet", "--no-deps", "--python", python, "-e", ROOT])
    marker.write_text(wanted)
    _say("environment ready")
    return python


def _airflow_line(value: str | None) -> str:
    line = value or os.environ.get("SPACES_AIRFLOW") or DEFAULT_AIRFLOW
    if line not in AIRFLOW_LINES:
        raise SystemExit(f"[dev] --airflow must be one of {', '.join(AIRFLOW_LINES)}, not {line!r}")
    return line


def cmd_test(line: str, args: list[str]) -> int:
    python = ensure_env(line)
    code = _run([python, "-m", "pytest", *args], cwd=ROOT)
    if code == 5:
        # pytest's "no tests collected" must never read as a pass.
        _say("pytest collected no tests: failing")
        return 1
    return code


def cmd_demo(line: str, args: list[str]) -> int:
    python = ensure_env(line)
    return _run([python, ROOT / "scripts" / "demo.py", *args], cwd=ROOT)


def cmd_check(line: str, args: list[str]) -> int:
    python = ensure_env(line)
    steps = [
        [python, "-m", "ruff", "format", "--check", "."],
        [python, "-m", "ruff", "check", "."],
        [python, "-m", "mypy"],
    ]
    failed = 0
    for step in steps:
        _say("running " + " ".join(str(part) for part in step[1:]))
        failed |= _run(step, cwd=ROOT) != 0
    return int(failed)


def cmd_run(line: str, args: list[str]) -> int:
    if not args:
        raise SystemExit("[dev] run needs a command, for example: python3 dev.py run python benchmarks/x.py")
    python = ensure_env(line)
    env = dict(os.environ)
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(python.parent.parent)
    return _run(args, cwd=ROOT, env=env)


def cmd_lock(line: str, args: list[str]) -> int:
    uv = _uv()
    lines = AIRFLOW_LINES if not args else args
    for each in lines:
        # Relative paths keep the lock file's header free of this machine's folders.
        source = (REQUIREMENTS / f"airflow-{each}.in").relative_to(ROOT)
        target = _lock_file(each).relative_to(ROOT)
        _say(f"resolving {source}")
        _check(
            [
                uv,
                "pip",
                "compile",
                "--quiet",
                "--universal",
                "--python-version",
                LOCK_PYTHON_FLOOR,
                "--output-file",
                target,
                source,
            ],
            cwd=ROOT,
        )
    return 0


COMMANDS = {"test": cmd_test, "demo": cmd_demo, "check": cmd_check, "run": cmd_run, "lock": cmd_lock}


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 10):  # noqa: UP036 - dev.py may be started by an older python3
        raise SystemExit("[dev] Python 3.10 or later is needed")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--airflow", help="Airflow line to use: 3.1 or 3.3 (default 3.3)")
    known, rest = parser.parse_known_args(argv)
    return COMMANDS[known.command](_airflow_line(known.airflow), rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
