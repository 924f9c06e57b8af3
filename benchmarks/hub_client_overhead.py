"""Measure what the Hub client costs next to the usual alternative, ``huggingface_hub``'s ``HfApi``.

Two figures, side by side: the import time a DAG file pays (``airflow_provider_spaces.hub``, its
client, and ``huggingface_hub``), and runtime reads per second against a local stand-in Hub that
answers a fixed runtime on 127.0.0.1. Bounded in calls and in seconds; nothing leaves the machine.

    python3 dev.py run python benchmarks/hub_client_overhead.py [--calls 300] [--max-seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RUNTIME = json.dumps(
    {"stage": "RUNNING", "hardware": {"current": "cpu-basic", "requested": "cpu-basic"}, "gcTimeout": 172800}
).encode()
IMPORT_REPEATS = 5


class _RuntimeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; without this, delayed acknowledgements add ~40 ms.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Request-Id", "bench")
        self.send_header("RateLimit", '"api";r=999;t=300')
        self.send_header("Content-Length", str(len(RUNTIME)))
        self.end_headers()
        self.wfile.write(RUNTIME)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def import_seconds(statement: str) -> float:
    """Return the median wall time of ``statement`` in a fresh interpreter, start-up excluded."""

    def run(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
        return time.perf_counter() - started

    baseline = statistics.median(run("pass") for _ in range(IMPORT_REPEATS))
    return max(0.0, statistics.median(run(statement) for _ in range(IMPORT_REPEATS)) - baseline)


def reads_per_second(read: Callable[[], Any], calls: int, max_seconds: float) -> tuple[float, float, int]:
    """Call ``read`` up to ``calls`` times or ``max_seconds``; return calls/s, median ms, calls made."""
    read()  # warm the connection pool
    latencies: list[float] = []
    deadline = time.monotonic() + max_seconds
    while len(latencies) < calls and time.monotonic() < deadline:
        started = time.perf_counter()
        read()
        latencies.append(time.perf_counter() - started)
    return len(latencies) / sum(latencies), statistics.median(latencies) * 1000, len(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--max-seconds", type=float, default=20.0)
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), _RuntimeHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    # The official client reads these when imported: aim it at the stand-in, and keep it quiet.
    os.environ.update(HF_ENDPOINT=url, HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_IMPLICIT_TOKEN="1")

    from huggingface_hub import HfApi

    from airflow_provider_spaces.hub.client import SpacesClient

    print("import time (median of 5 fresh interpreters, start-up excluded)")
    for statement in (
        "import airflow_provider_spaces.hub",
        "from airflow_provider_spaces.hub import SpacesClient",
        "from huggingface_hub import HfApi",
    ):
        print(f"  {statement:<52} {import_seconds(statement) * 1000:8.1f} ms")

    print(f"runtime reads against {url} (up to {args.calls} calls or {args.max_seconds:.0f} s each)")
    with SpacesClient(endpoint=url, token="hf_benchmark") as ours:
        rate, median, made = reads_per_second(
            lambda: ours.get_space_runtime("demo/app"), args.calls, args.max_seconds
        )
        print(
            f"  {'SpacesClient.get_space_runtime':<52} {rate:8.0f} calls/s   median {median:6.2f} ms   ({made} calls)"
        )
    theirs = HfApi(endpoint=url, token="hf_benchmark")
    rate, median, made = reads_per_second(
        lambda: theirs.get_space_runtime("demo/app"), args.calls, args.max_seconds
    )
    print(f"  {'HfApi.get_space_runtime':<52} {rate:8.0f} calls/s   median {median:6.2f} ms   ({made} calls)")

    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main()
