"""Watch a fleet of Spaces until they run: our triggers on one event loop, or one thread per Space.

N Spaces on the emulator go from BUILDING to RUNNING at staggered times. Two kinds of watcher wait
for all of them, one after the other, each in a subprocess of its own (so that memory and CPU are
its own) against a freshly reset emulator with the same schedule and the same token:

(a) ``triggers``: N ``SpaceStageTrigger`` instances whose ``run()`` is iterated side by side on one
    event loop, as Airflow's triggerer does: one connection pool, one call budget for the token.
(b) ``threads``: what a user would write without us, one thread per Space calling
    ``huggingface_hub``'s ``HfApi.wait_for_space`` (or, on releases without it, a loop of
    ``get_space_runtime`` and ``time.sleep``), which raises on a 429; the loop catches that,
    sleeps one poll interval and calls it again.

For each it reports peak memory (RSS: the whole process, and what the watchers added to it once
their libraries were imported), CPU seconds while watching, Hub calls and 429s (from the
emulator's request log), and the delay between each Space reaching RUNNING (from the emulator's
ledger) and its watcher noticing, median and p99; then the ratios (b)/(a).

Time is compressed by ``--compress`` K, consistently: the emulator's clock runs at real speed,
and every duration of the Hub's world is divided by K. The quota stays 1,000 calls, its window
becomes 300/K s (the limiter learns it from the ``RateLimit-Policy`` header the emulator sends,
as it would learn the real 300 s); Spaces reach RUNNING 60 to 300 s (÷K) after the start, 10 s
(÷K) after leaving BUILDING; both watchers poll every ``--poll`` s (÷K) at first, and our
triggers back off to ``--max-poll`` s (÷K). Delays are reported ×K, in Hub seconds.

What does not compress is CPU time: (b) sends N / poll interval calls per second, and one Python
process on this machine sends about 250 a second at most. So K is chosen per size to keep (b)
within that, where it can be: 25 for 100 Spaces, 2.5 for 1,000. For 10,000 no K does (even
uncompressed, 10,000 threads polling every 10 s ask for 1,000 calls a second), so K = 60 keeps
the run in minutes, and (b)'s calls and 429s there are what its CPU let it send, fewer than it
asked for.

Every run is bounded: each watcher gives up at its own deadline, and the subprocess is killed
past it. Nothing leaves 127.0.0.1; the emulator runs in its own process from its CLI.

    python3 dev.py run python benchmarks/fleet_watch.py                  # 1,000 Spaces, K = 2.5
    python3 dev.py run python benchmarks/fleet_watch.py --spaces 100 1000 10000 --compress 25 2.5 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OWNER = "fleet"
TOKEN = "hf_emulator_fleet_bench_3f9a1c0d5e7b42a8"
CONN_ID = "fleet_bench"
QUOTA = 1000
WINDOW = 300.0
STAGGER = (60.0, 300.0)
START_SECONDS = 10.0
_STARTUP_SECONDS = 60.0
# Real seconds a watcher process needs per Space to set up before the first Space may run.
_LEAD_PER_SPACE = 0.003


# == the orchestrator ===============================================================================


@dataclass
class Scenario:
    """One size of fleet, in Hub seconds unless named real."""

    spaces: int
    compress: float
    poll: float
    max_poll: float
    thread_cap: int
    seed: int = 7

    @property
    def budgeted_interval(self) -> float:
        """Return N × window / quota: how often each of N watchers may read, in Hub seconds."""
        return self.spaces * WINDOW / QUOTA

    @property
    def lead_real(self) -> float:
        return 2.0 + self.spaces * _LEAD_PER_SPACE

    @property
    def run_real(self) -> float:
        """Return how long a watcher process may watch, in real seconds, before it gives up."""
        return (
            self.lead_real + (STAGGER[1] + 2 * max(self.budgeted_interval, self.max_poll)) / self.compress + 5
        )


@dataclass
class Outcome:
    """What one watcher kind measured on one fleet."""

    kind: str
    label: str
    peak_rss_mb: float
    watcher_rss_mb: float
    cpu_seconds: float
    calls: int
    rate_limited: int
    delays: list[float]
    unnoticed: int
    notes: list[str] = field(default_factory=list)

    def percentile(self, share: float) -> float | None:
        if not self.delays:
            return None
        ordered = sorted(self.delays)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    """Run every fleet size with both watcher kinds, print the figures, and return 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spaces", type=int, nargs="+", default=[1000], help="fleet sizes to run")
    parser.add_argument(
        "--compress",
        type=float,
        nargs="+",
        default=[2.5],
        help="how much faster the Hub's world runs: one factor for every size, or one per size",
    )
    parser.add_argument("--poll", type=float, default=10.0, help="first poll interval, Hub seconds")
    parser.add_argument("--max-poll", type=float, default=30.0, help="our triggers' longest interval")
    parser.add_argument("--thread-cap", type=int, default=10000, help="most threads (b) may start")
    parser.add_argument(
        "--kinds", nargs="+", default=["triggers", "threads"], choices=["triggers", "threads"]
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return run_worker(args)
    factors = args.compress * len(args.spaces) if len(args.compress) == 1 else args.compress
    if len(factors) != len(args.spaces) or any(WINDOW / k != round(WINDOW / k) for k in factors):
        parser.error("give one --compress factor, or one per size; 300 / factor must be whole seconds")

    results: dict[int, list[Outcome]] = {}
    with emulator_process() as url:
        for size, factor in zip(args.spaces, factors, strict=True):
            scenario = Scenario(size, factor, args.poll, args.max_poll, args.thread_cap)
            results[size] = [run_kind(kind, scenario, url) for kind in args.kinds]
            print(report(scenario, results[size]), flush=True)
    if args.json:
        args.json.write_text(json.dumps({n: [o.__dict__ for o in runs] for n, runs in results.items()}))
    return 0


@contextmanager
def emulator_process() -> Iterator[str]:
    """Run the emulator from its CLI in a child process on 127.0.0.1 and yield its URL."""
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow_provider_spaces.emulator", "--port", "0", "--speed", "1"],
            stdout=out,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            yield _served_url(process, out)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


def _served_url(process: subprocess.Popen[bytes], out: Any) -> str:
    deadline = time.monotonic() + _STARTUP_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        out.seek(0)
        first = out.readline()
        if " on http://127.0.0.1:" in first:
            return str(first.split(" on ", 1)[1].split()[0])
        time.sleep(0.1)
    raise RuntimeError("the emulator did not start")


def run_kind(kind: str, scenario: Scenario, url: str) -> Outcome:
    """Seed the fleet, run one watcher kind in its own process, and measure it against the emulator."""
    from airflow_provider_spaces.emulator import EmulatorClient

    with EmulatorClient(url) as hub:
        spaces = seed(hub, scenario)
        measured = watch_in_child(kind, scenario, url, hub)
        running_at = running_times(hub.ledger(), spaces)
        log = [entry for entry in hub.request_log() if entry["owner"] == OWNER]
    return outcome(kind, measured, running_at, log, scenario)


def seed(hub: Any, scenario: Scenario) -> list[str]:
    """Create the fleet on a nearly stopped clock, so that every Space starts its build together."""
    hub.reset()
    hub.add_token(OWNER, role="write", token=TOKEN)
    hub.set_quota(QUOTA, window_seconds=round(WINDOW / scenario.compress))
    hub.set_speed(1e-6)
    rng = random.Random(scenario.seed)
    spaces = [f"{OWNER}/space-{index:05d}" for index in range(scenario.spaces)]
    for space_id in spaces:
        running = scenario.lead_real + rng.uniform(*STAGGER) / scenario.compress
        start = START_SECONDS / scenario.compress
        hub.add_space(space_id, stage="BUILDING", build_seconds=running - start, start_seconds=start)
    return spaces


def watch_in_child(kind: str, scenario: Scenario, url: str, hub: Any) -> dict[str, Any]:
    """Start the watcher process, let the clock run once it is ready, and return what it measured."""
    command = [
        sys.executable,
        __file__,
        "--worker",
        kind,
        "--url",
        url,
        "--spaces",
        str(scenario.spaces),
        "--compress",
        str(scenario.compress),
        "--poll",
        str(scenario.poll),
        "--max-poll",
        str(scenario.max_poll),
        "--thread-cap",
        str(scenario.thread_cap),
    ]
    env = {
        **os.environ,
        "HF_ENDPOINT": url,
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(
            {"conn_type": "huggingface_spaces", "host": url, "password": TOKEN}
        ),
    }
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        env.pop(name, None)
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdin is not None and child.stdout is not None
    try:
        if child.stdout.readline().strip() != "READY":
            raise RuntimeError(f"the {kind} watcher did not start")
        hub.set_speed(1)
        # The watcher's wall clock plus this offset is the emulator's clock, which runs at speed 1 now.
        child.stdin.write(f"GO {hub.now() - time.time()}\n")
        child.stdin.flush()
        output, _ = child.communicate(timeout=scenario.run_real + 120)
    except BaseException:
        child.kill()
        child.wait(timeout=30)
        raise
    return dict(json.loads(output.strip().splitlines()[-1]))


def running_times(ledger: dict[str, Any], spaces: list[str]) -> dict[str, float]:
    """Return when each Space entered RUNNING, in emulated time, from the billing ledger."""
    found = {}
    for space_id in spaces:
        starts = [i["start"] for i in ledger["spaces"][space_id]["intervals"] if i["stage"] == "RUNNING"]
        if starts:
            found[space_id] = min(starts)
    return found


def outcome(
    kind: str,
    measured: dict[str, Any],
    running_at: dict[str, float],
    log: list[dict[str, Any]],
    scenario: Scenario,
) -> Outcome:
    statuses = Counter(entry["status"] for entry in log)
    delays = [
        (measured["noticed"][space] - at) * scenario.compress
        for space, at in running_at.items()
        if space in measured["noticed"]
    ]
    notes = list(measured.get("notes", []))
    if len(log) >= 100_000:
        notes.append("the emulator's request log is full (100,000): calls counted by the watcher")
    calls = measured["calls"] if len(log) >= 100_000 else len(log)
    limited = measured["rate_limited"] if len(log) >= 100_000 else statuses[429]
    return Outcome(
        kind=kind,
        label=measured["label"],
        peak_rss_mb=measured["peak_rss_mb"],
        watcher_rss_mb=measured["peak_rss_mb"] - measured["baseline_rss_mb"],
        cpu_seconds=measured["cpu_seconds"],
        calls=calls,
        rate_limited=limited,
        delays=delays,
        unnoticed=scenario.spaces - len(delays),
        notes=notes,
    )


def report(scenario: Scenario, runs: list[Outcome]) -> str:
    """Format one fleet size's figures, and the ratios (b)/(a) when both kinds ran."""
    lines = [
        "",
        f"== {scenario.spaces} Spaces, time compressed x{scenario.compress:g} "
        f"(quota {QUOTA} per {WINDOW / scenario.compress:g} s real = {WINDOW:g} Hub s); "
        f"budgeted poll interval N x window / quota = {scenario.budgeted_interval:g} Hub s",
        f"{'watcher':58} {'peak RSS':>9} {'watchers':>9} {'CPU s':>7} {'calls':>8} {'429s':>7} "
        f"{'median':>8} {'p99':>8} {'missed':>6}",
    ]
    for run in runs:
        lines.append(
            f"{run.label:58} {run.peak_rss_mb:7.1f}MB {run.watcher_rss_mb:7.1f}MB {run.cpu_seconds:7.2f} "
            f"{run.calls:8d} {run.rate_limited:7d} {_seconds(run.percentile(0.5)):>8} "
            f"{_seconds(run.percentile(0.99)):>8} {run.unnoticed:6d}"
        )
        lines.extend(f"   note: {note}" for note in run.notes)
    if len(runs) == 2:
        lines.append(_ratios(*runs))
    return "\n".join(lines)


def _ratios(ours: Outcome, theirs: Outcome) -> str:
    def ratio(mine: float | None, other: float | None) -> str:
        if mine is None or other is None:
            return "n/a"
        return f"{other / mine:.1f}x" if mine > 0 else ("equal" if other == 0 else "inf")

    return (
        f"ratios (b)/(a): peak RSS {ratio(ours.peak_rss_mb, theirs.peak_rss_mb)}, "
        f"watchers' RSS {ratio(ours.watcher_rss_mb, theirs.watcher_rss_mb)}, "
        f"CPU {ratio(ours.cpu_seconds, theirs.cpu_seconds)}, calls {ratio(ours.calls, theirs.calls)}, "
        f"429s {theirs.rate_limited} vs {ours.rate_limited}, "
        f"median delay {ratio(ours.percentile(0.5), theirs.percentile(0.5))}, "
        f"p99 delay {ratio(ours.percentile(0.99), theirs.percentile(0.99))}"
    )


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}s"


# == the watcher processes ============================================================================


def run_worker(args: argparse.Namespace) -> int:
    """Watch the fleet as one kind of watcher and print what was measured as one JSON line."""
    scenario = Scenario(args.spaces[0], args.compress[0], args.poll, args.max_poll, args.thread_cap)
    spaces = [f"{OWNER}/space-{index:05d}" for index in range(scenario.spaces)]
    watch = _watch_with_triggers if args.worker == "triggers" else _watch_with_threads
    measured = watch(args.url, spaces, scenario)
    print(json.dumps(measured), flush=True)
    return 0


def _ready() -> tuple[float, float, float]:
    """Say the imports are done, wait for the start, and return the clock offset, RSS and CPU then."""
    baseline = _rss_mb()
    print("READY", flush=True)
    offset = float(sys.stdin.readline().split()[1])
    return offset, baseline, _cpu_seconds()


def _finish(
    label: str, noticed: dict[str, float], baseline: float, cpu: float, **extra: Any
) -> dict[str, Any]:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "label": label,
        "noticed": noticed,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": peak,
        "cpu_seconds": _cpu_seconds() - cpu,
        **extra,
    }


def _watch_with_triggers(url: str, spaces: list[str], scenario: Scenario) -> dict[str, Any]:
    from airflow_provider_spaces.hooks.spaces import SpacesHook
    from airflow_provider_spaces.hub.aio import new_http_client
    from airflow_provider_spaces.triggers.spaces import SpaceStageTrigger

    async def warm_up() -> None:
        # A triggerer that runs for days has imported everything long before; so does this one
        # before it is measured: the connection lookup and the HTTP stack (an admin call, not
        # counted against the token).
        await SpacesHook(CONN_ID).aget_settings()
        async with new_http_client() as http:
            await http.get(f"{url}/_emulator/clock")

    asyncio.run(warm_up())
    offset, baseline, cpu = _ready()
    deadline = time.time() + scenario.run_real
    noticed: dict[str, float] = {}
    outcomes: Counter[str] = Counter()

    async def watch(space_id: str) -> None:
        trigger = SpaceStageTrigger(
            space_id=space_id,
            deadline=deadline,
            spaces_conn_id=CONN_ID,
            poll_interval=scenario.poll / scenario.compress,
            max_poll_interval=scenario.max_poll / scenario.compress,
        )
        async for event in trigger.run():
            outcomes[event.payload["status"]] += 1
            if event.payload["status"] == "success":
                noticed[space_id] = time.time() + offset

    async def everyone() -> None:
        await asyncio.gather(*(watch(space_id) for space_id in spaces))

    asyncio.run(everyone())
    notes = [f"events: {dict(outcomes)}"]
    return _finish("(a) SpaceStageTrigger.run() x N, one event loop", noticed, baseline, cpu, notes=notes)


def _watch_with_threads(url: str, spaces: list[str], scenario: Scenario) -> dict[str, Any]:
    from huggingface_hub import HfApi, get_session
    from huggingface_hub.errors import HfHubHTTPError

    counts: Counter[str] = Counter()
    lock = threading.Lock()

    class CountingApi(HfApi):  # type: ignore[misc]
        def get_space_runtime(self, *args: Any, **kwargs: Any) -> Any:
            with lock:
                counts["calls"] += 1
            try:
                return super().get_space_runtime(*args, **kwargs)
            except HfHubHTTPError as error:
                if error.response is not None and error.response.status_code == 429:
                    with lock:
                        counts["429"] += 1
                raise

    api = CountingApi(endpoint=url, token=TOKEN)
    waiter = _user_wait(api)
    # As for the triggers: the HTTP stack is imported and warm before measuring (an admin call).
    get_session().get(f"{url}/_emulator/clock")
    label = "(b) thread per Space, " + waiter.__doc__.strip()  # type: ignore[union-attr]
    offset, baseline, cpu = _ready()
    deadline = time.time() + scenario.run_real
    interval = scenario.poll / scenario.compress
    noticed: dict[str, float] = {}

    def watch(space_id: str) -> None:
        while (left := deadline - time.time()) > 0:
            try:
                waiter(space_id, interval, left)
            except HfHubHTTPError:
                time.sleep(interval)  # what a user's loop does on a 429: wait a poll and go on
                continue
            except TimeoutError:
                return
            except Exception:
                with lock:
                    counts["other errors"] += 1
                time.sleep(interval)
                continue
            noticed[space_id] = time.time() + offset
            return

    threads, notes = _start_threads(watch, spaces, scenario.thread_cap)
    for thread in threads:
        thread.join(max(0.0, deadline - time.time()) + 5)
    if counts["other errors"]:
        notes.append(f"{counts['other errors']} calls failed otherwise (connection errors under load)")
    return _finish(
        label, noticed, baseline, cpu, calls=counts["calls"], rate_limited=counts["429"], notes=notes
    )


def _user_wait(api: Any) -> Callable[[str, float, float], Any]:
    """Return the wait a user would call: ``wait_for_space`` when the release has it, else a loop."""
    if hasattr(api, "wait_for_space"):

        def wait_for_space(space_id: str, interval: float, left: float) -> Any:
            """HfApi.wait_for_space"""
            return api.wait_for_space(space_id, timeout=left, poll_interval=interval)

        return wait_for_space

    def poll_loop(space_id: str, interval: float, left: float) -> Any:
        """HfApi.get_space_runtime + time.sleep loop"""
        until = time.time() + left
        while time.time() < until:
            runtime = api.get_space_runtime(space_id)
            if runtime.stage == "RUNNING":
                return runtime
            time.sleep(interval)
        raise TimeoutError(space_id)

    return poll_loop


def _start_threads(
    target: Callable[[str], None], spaces: list[str], cap: int
) -> tuple[list[threading.Thread], list[str]]:
    threads: list[threading.Thread] = []
    notes: list[str] = []
    for space_id in spaces[:cap]:
        thread = threading.Thread(target=target, args=(space_id,), daemon=True)
        try:
            thread.start()
        except RuntimeError as error:
            notes.append(f"thread {len(threads) + 1} could not start ({error}): capped at {len(threads)}")
            break
        threads.append(thread)
    if len(spaces) > cap:
        notes.append(f"capped at {cap} threads (--thread-cap): {len(spaces) - cap} Spaces not watched")
    return threads, notes


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    sys.exit(main())
