"""How many runtime reads per second the emulator serves, next to a trivial handler on the same stack.

Run it with ``python3 dev.py run python benchmarks/emulator_throughput.py``. It starts two servers as
child processes on 127.0.0.1: the emulator (``python -m airflow_provider_spaces.emulator``) seeded
with ``--spaces`` Spaces, and a baseline that answers every runtime read with the same fixed JSON
from a bare Starlette route on uvicorn. Each is then read by many concurrent clients for a bounded
time: threads with one ``requests`` session each, and asyncio tasks on a few ``httpx`` clients.
The reads spread round-robin over all Spaces, as when a thousand Spaces are watched at once.

The ratio emulator/baseline says what the emulator's own work (token, quota, faults, lazy state
machine, request log) costs on top of the HTTP stack. Clients and servers share this machine's
cores, and Python clients are often the bottleneck, so reads per second mostly measure the
clients; the server's CPU time per read (from /proc, Linux only) is the emulator's own cost and
says how many reads one core of it can serve. Every phase stops by
itself after ``--seconds`` seconds or ``--max-requests`` requests, whichever comes first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import requests

from airflow_provider_spaces.emulator import EmulatorClient

HOST = "127.0.0.1"
_STARTUP_SECONDS = 30.0
_TASKS_PER_CLIENT = 8
# The same body the emulator answers for a running cpu-basic Space, so both servers send as much.
_FIXED_RUNTIME = {
    "stage": "RUNNING",
    "hardware": {"current": "cpu-basic", "requested": "cpu-basic"},
    "storage": None,
    "devMode": False,
    "replicas": {"requested": 1, "current": 1},
    "domains": [{"domain": "bench-space-0000.hf.space", "stage": "READY"}],
    "gcTimeout": 172800,
}


@dataclass
class Result:
    """What one load phase measured."""

    requests: int
    failures: int
    seconds: float
    server_cpu_seconds: float | None = None

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_microseconds(self) -> float | None:
        """Return the server's CPU time per request: its own cost, whatever the clients cost."""
        if self.server_cpu_seconds is None or not self.requests:
            return None
        return self.server_cpu_seconds / self.requests * 1e6


def process_cpu_seconds(pid: int) -> float | None:
    """Return the user plus system CPU time of a process, or None where /proc is missing."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime and stime are the 14th and 15th fields; the split drops the first two.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve_baseline(port: int) -> None:
    """Serve the fixed runtime JSON on every runtime path (the baseline child process)."""
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route, Router

    async def runtime(request: Request) -> JSONResponse:
        return JSONResponse(_FIXED_RUNTIME)

    app = Router([Route("/api/spaces/{namespace}/{name}/runtime", runtime)])
    config = uvicorn.Config(app, host=HOST, port=port, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)

    def announce() -> None:
        while not server.started:
            time.sleep(0.01)
        bound = server.servers[0].sockets[0].getsockname()[1]
        print(f"Baseline serving on http://{HOST}:{bound}", flush=True)

    threading.Thread(target=announce, daemon=True).start()
    server.run()


@contextmanager
def child_server(command: list[str]) -> Iterator[tuple[str, int]]:
    """Start a server process, yield the URL it prints first and its pid, and stop it afterwards."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        yield _first_url(process), process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _first_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    found: list[str] = []
    stream = process.stdout

    def read() -> None:
        found.append(stream.readline())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(_STARTUP_SECONDS)
    if not found or " on http://" not in found[0]:
        raise RuntimeError(f"the server did not start: {found!r}")
    return found[0].split(" on ", 1)[1].split()[0]


def load_threads(url: str, token: str, paths: list[str], threads: int, seconds: float, cap: int) -> Result:
    """Read runtimes from ``threads`` threads, one requests session each, until time or cap."""
    counts = [0] * threads
    failures = [0] * threads
    deadline = time.monotonic() + seconds
    per_thread_cap = max(1, cap // threads)

    def worker(index: int) -> None:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {token}"
            position = index
            while time.monotonic() < deadline and counts[index] < per_thread_cap:
                answer = session.get(url + paths[position % len(paths)], timeout=30)
                counts[index] += 1
                failures[index] += answer.status_code != 200
                position += threads

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return Result(sum(counts), sum(failures), time.monotonic() - started)


async def _load_async(url: str, token: str, paths: list[str], tasks: int, seconds: float, cap: int) -> Result:
    counts = [0] * tasks
    failures = [0] * tasks
    deadline = time.monotonic() + seconds
    per_task_cap = max(1, cap // tasks)
    headers = {"Authorization": f"Bearer {token}"}
    # One httpx client slows down sharply past a few dozen concurrent requests on its pool (a
    # client-side cost that would hide the server's), so the tasks share a few clients instead.
    groups = max(1, tasks // _TASKS_PER_CLIENT)
    limits = httpx.Limits(max_connections=_TASKS_PER_CLIENT, max_keepalive_connections=_TASKS_PER_CLIENT)
    clients = [
        httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) for _ in range(groups)
    ]

    async def worker(index: int) -> None:
        client = clients[index % groups]
        position = index
        while time.monotonic() < deadline and counts[index] < per_task_cap:
            answer = await client.get(paths[position % len(paths)])
            counts[index] += 1
            failures[index] += answer.status_code != 200
            position += tasks

    try:
        started = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(tasks)))
        return Result(sum(counts), sum(failures), time.monotonic() - started)
    finally:
        for client in clients:
            await client.aclose()


def load_async(url: str, token: str, paths: list[str], tasks: int, seconds: float, cap: int) -> Result:
    """Read runtimes from ``tasks`` asyncio tasks sharing one httpx client, until time or cap."""
    return asyncio.run(_load_async(url, token, paths, tasks, seconds, cap))


def seed(url: str, count: int) -> tuple[str, list[str]]:
    """Add ``count`` Spaces and lift the quota so that it does not cap the measure; return token and paths."""
    with EmulatorClient(url) as admin:
        admin.set_quota(10**9, 300)
        ids = [f"bench/space-{index:04d}" for index in range(count)]
        for index, space_id in enumerate(ids):
            # A mix of flavors and stages, so that reads exercise more than one branch.
            hardware = "a10g-small" if index % 10 == 0 else "cpu-basic"
            admin.add_space(space_id, hardware=hardware, stage="BUILDING" if index % 7 == 0 else "RUNNING")
        return admin.read_token, [f"/api/spaces/{space_id}/runtime" for space_id in ids]


def main(argv: list[str] | None = None) -> int:
    """Run both variants against both servers and print the figures side by side."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spaces", type=int, default=1000, help="Spaces to seed (default 1000)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each load phase (default 5)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap on requests per phase")
    parser.add_argument("--threads", type=int, default=16, help="client threads (default 16)")
    parser.add_argument("--tasks", type=int, default=64, help="asyncio tasks (default 64)")
    parser.add_argument("--serve-baseline", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_baseline:
        serve_baseline(args.port)
        return 0
    if args.seconds <= 0 or args.seconds > 120:
        parser.error("--seconds must be above 0 and at most 120")

    emulator_command = [
        sys.executable,
        "-m",
        "airflow_provider_spaces.emulator",
        "--port",
        "0",
        "--host",
        HOST,
    ]
    baseline_command = [sys.executable, __file__, "--serve-baseline", "--port", "0"]
    results: dict[tuple[str, str], Result] = {}
    with child_server(emulator_command) as emulator, child_server(baseline_command) as baseline:
        started = time.monotonic()
        token, paths = seed(emulator[0], args.spaces)
        print(f"seeded {args.spaces} Spaces in {time.monotonic() - started:.1f} s", flush=True)
        for name, (url, pid) in (("emulator", emulator), ("baseline", baseline)):
            load_threads(url, token, paths, args.threads, min(1.0, args.seconds), 2000)  # warm-up
            for variant in ("threads", "asyncio"):
                load = load_threads if variant == "threads" else load_async
                width = args.threads if variant == "threads" else args.tasks
                before = process_cpu_seconds(pid)
                result = load(url, token, paths, width, args.seconds, args.max_requests)
                after = process_cpu_seconds(pid)
                if before is not None and after is not None:
                    result.server_cpu_seconds = after - before
                results[(variant, name)] = result

    print(_table(results, args), flush=True)
    figures = {
        f"{variant}/{name}": {"reads_per_second": round(r.per_second, 1), "server_cpu_us": r.cpu_microseconds}
        for (variant, name), r in results.items()
    }
    print(json.dumps(figures))
    return 1 if any(r.failures for r in results.values()) else 0


def _table(results: dict[tuple[str, str], Result], args: argparse.Namespace) -> str:
    lines = [
        f"runtime reads on {HOST}, {args.spaces} Spaces, {args.seconds:g} s per phase",
        f"{'client':<34}{'reads/s emulator':>18}{'baseline':>10}{'ratio':>7}"
        f"{'server CPU us/read emulator':>29}{'baseline':>10}{'ratio':>7}{'failed':>8}",
    ]
    labels = {
        "threads": f"{args.threads} threads, requests sessions",
        "asyncio": f"{args.tasks} asyncio tasks, httpx clients",
    }
    for variant, label in labels.items():
        emulator, baseline = results[(variant, "emulator")], results[(variant, "baseline")]
        ratio = emulator.per_second / baseline.per_second if baseline.per_second else 0.0
        cpu, cpu_base = emulator.cpu_microseconds, baseline.cpu_microseconds
        cpu_ratio = f"{cpu / cpu_base:>7.2f}" if cpu and cpu_base else f"{'n/a':>7}"
        failed = emulator.failures + baseline.failures
        lines.append(
            f"{label:<34}{emulator.per_second:>18.0f}{baseline.per_second:>10.0f}{ratio:>7.2f}"
            f"{_micro(cpu):>29}{_micro(cpu_base):>10}{cpu_ratio}{failed:>8}"
        )
    return "\n".join(lines)


def _micro(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


if __name__ == "__main__":
    sys.exit(main())
