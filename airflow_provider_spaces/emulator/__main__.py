"""Serve the Hub emulator until stopped: ``python -m airflow_provider_spaces.emulator --port 8765``."""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING

from airflow_provider_spaces.emulator.clock import MAX_SPEED

if TYPE_CHECKING:
    from airflow_provider_spaces.emulator.server import HubEmulator

PROG = "python -m airflow_provider_spaces.emulator"
_MAX_PORT = 65_535


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, serve, and return the exit code once stopped (2 for a usage error)."""
    args = _parser().parse_args(argv)

    from airflow_provider_spaces.emulator.server import HubEmulator

    emulator = HubEmulator(host=args.host, port=args.port, speed=args.speed, seed_demo=args.seed_demo)
    try:
        emulator.start()
    except (OSError, RuntimeError) as error:
        # A port in use or an address this machine does not have: a usage error, not a crash.
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        print(f"{PROG}: error: cannot serve on {args.host}:{args.port}: {reason}", file=sys.stderr)
        return 2

    try:
        _serve_until_stopped(emulator, args)
    finally:
        emulator.stop()
    print("Hub emulator stopped", flush=True)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument(
        "--port", type=_port, required=True, help="port to listen on, 0 to 65535 (0 picks a free one)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        help=f"emulated seconds per real second, above 0 and at most {MAX_SPEED:g} (default 1)",
    )
    parser.add_argument("--seed-demo", action="store_true", help="add the demo Spaces at start")
    return parser


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= _MAX_PORT:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to {_MAX_PORT}, not {text!r}")
    return port


def _speed(text: str) -> float:
    try:
        speed = float(text)
    except ValueError:
        speed = math.nan
    if not (math.isfinite(speed) and 0 < speed <= MAX_SPEED):
        raise argparse.ArgumentTypeError(f"must be a number above 0 and at most {MAX_SPEED:g}, not {text!r}")
    return speed


def _serve_until_stopped(emulator: HubEmulator, args: argparse.Namespace) -> None:
    """Print where the emulator serves and its tokens, then wait for SIGTERM or Ctrl-C."""
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    # The tokens are printed on purpose: they are the emulator's own, and the user needs them.
    print(f"Hub emulator serving on {emulator.url} (speed {args.speed})", flush=True)
    print(f"write token (owner demo, org demo-org): {emulator.write_token}", flush=True)
    print(f"read token (owner demo): {emulator.read_token}", flush=True)
    if args.seed_demo:
        print("demo Spaces: " + ", ".join(sorted(emulator.hub.spaces)), flush=True)
    stop.wait()


if __name__ == "__main__":
    sys.exit(main())
