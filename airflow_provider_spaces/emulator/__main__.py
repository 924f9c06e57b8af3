"""Serve the Hub emulator until stopped: ``python -m airflow_provider_spaces.emulator --port 8765``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, serve, and return the exit code once stopped."""
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_spaces.emulator", description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="port to listen on (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--speed", type=float, default=1.0, help="emulated seconds per real second")
    parser.add_argument("--seed-demo", action="store_true", help="add the demo Spaces at start")
    args = parser.parse_args(argv)

    from airflow_provider_spaces.emulator.server import HubEmulator

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    emulator = HubEmulator(host=args.host, port=args.port, speed=args.speed, seed_demo=args.seed_demo)
    with emulator:
        # The tokens are printed on purpose: they are the emulator's own, and the user needs them.
        print(f"Hub emulator serving on {emulator.url} (speed {args.speed})", flush=True)
        print(f"write token (owner demo, org demo-org): {emulator.write_token}", flush=True)
        print(f"read token (owner demo): {emulator.read_token}", flush=True)
        if args.seed_demo:
            print("demo Spaces: " + ", ".join(sorted(emulator.hub.spaces)), flush=True)
        stop.wait()
    print("Hub emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
