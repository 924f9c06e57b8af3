"""Running the emulator: lifecycle, many at once, the admin API and ``EmulatorClient``, the CLI."""

from __future__ import annotations

import importlib.metadata
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from airflow_provider_spaces.emulator import EmulatorClient, HubEmulator
from airflow_provider_spaces.emulator.__main__ import main
from airflow_provider_spaces.emulator.core import UnknownSpaceError
from airflow_provider_spaces.emulator.pytest_plugin import DEFAULT_SPEED


def _refuses_connections(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_leaving_the_with_block_stops_the_thread_and_closes_the_port() -> None:
    before = set(threading.enumerate())

    with HubEmulator() as hub:
        port = hub.port
        assert requests.get(f"{hub.url}/api/spaces/hardware", timeout=10).status_code == 200

    assert set(threading.enumerate()) <= before
    assert _refuses_connections(port)


def test_many_emulators_run_at_once_each_with_its_own_port_and_state() -> None:
    with HubEmulator() as first, HubEmulator() as second, HubEmulator() as third:
        first.add_space("demo/only-here")
        headers = {"Authorization": f"Bearer {first.write_token}"}

        ports = {first.port, second.port, third.port}
        here = requests.get(f"{first.url}/api/spaces/demo/only-here/runtime", headers=headers, timeout=10)
        there = requests.get(
            f"{second.url}/api/spaces/demo/only-here/runtime",
            headers={"Authorization": f"Bearer {second.write_token}"},
            timeout=10,
        )

    assert len(ports) == 3
    assert (here.status_code, there.status_code) == (200, 404)


def test_stop_is_safe_twice_and_start_is_refused_while_running() -> None:
    hub = HubEmulator().start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            hub.start()
    finally:
        hub.stop()
    hub.stop()

    with pytest.raises(RuntimeError, match="not running"):
        _ = hub.url


def test_the_repr_shows_no_token() -> None:
    with HubEmulator(write_token="hf_emu_visible_nowhere") as hub:
        assert "hf_emu_visible_nowhere" not in repr(hub)
        assert hub.url in repr(hub)


def test_given_token_values_are_used() -> None:
    with HubEmulator(write_token="hf_emu_w", read_token="hf_emu_r") as hub:
        assert (hub.write_token, hub.read_token) == ("hf_emu_w", "hf_emu_r")


def test_the_fixture_runs_a_fast_clock(hub_emulator: HubEmulator) -> None:
    assert hub_emulator.hub.clock.speed == DEFAULT_SPEED
    assert requests.get(f"{hub_emulator.url}/api/spaces/hardware", timeout=10).status_code == 200


def test_the_fixture_clock_moves_a_space_to_running_without_help(hub_emulator: HubEmulator) -> None:
    hub_emulator.add_space("demo/app", stage="BUILDING", build_seconds=30, start_seconds=10)
    headers = {"Authorization": f"Bearer {hub_emulator.write_token}"}
    url = f"{hub_emulator.url}/api/spaces/demo/app/runtime"

    # 40 emulated seconds are two thirds of a real one; the loop is bounded well beyond that.
    stages = []
    for _ in range(200):
        stages.append(requests.get(url, headers=headers, timeout=10).json()["stage"])
        if stages[-1] == "RUNNING":
            break
        threading.Event().wait(0.05)

    assert stages[0] == "BUILDING"
    assert stages[-1] == "RUNNING"


@pytest.mark.spaces_emulator(speed=2.5, quota=7)
def test_the_marker_passes_options_to_the_fixture(hub_emulator: HubEmulator) -> None:
    answer = requests.get(f"{hub_emulator.url}/api/spaces/hardware", timeout=10)

    assert hub_emulator.hub.clock.speed == 2.5
    assert answer.headers["RateLimit-Policy"] == '"fixed window";"api";q=7;w=300'


def test_the_pytest_plugin_is_registered_as_an_entry_point() -> None:
    plugins = importlib.metadata.entry_points(group="pytest11")

    assert any(
        ep.name == "spaces_emulator" and ep.value == "airflow_provider_spaces.emulator.pytest_plugin"
        for ep in plugins
    )


def test_importing_the_package_and_the_plugin_loads_no_http_stack() -> None:
    code = (
        "import sys, airflow_provider_spaces.emulator, airflow_provider_spaces.emulator.pytest_plugin\n"
        "heavy = ('fastapi', 'uvicorn', 'starlette', 'requests', 'httpx')\n"
        "print([name for name in heavy if name in sys.modules])"
    )

    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )

    assert shown.stdout.strip() == "[]"


# == the admin API and EmulatorClient, side by side with the in-process API =======================


@pytest.fixture(params=["in-process", "emulator-client"])
def control(request: pytest.FixtureRequest, hub_emulator: HubEmulator) -> Iterator[Any]:
    """The same scripting methods, called on the emulator itself or over its admin API."""
    if request.param == "in-process":
        yield hub_emulator
        return
    with EmulatorClient(hub_emulator.url) as client:
        yield client


def test_both_scripting_apis_seed_and_read_the_same_hub(control: Any, hub_emulator: HubEmulator) -> None:
    control.set_speed(0.001)
    token = control.add_token("alice", role="write", orgs=["alice-org"])
    control.add_space("alice-org/app", hardware="t4-small", build_seconds=20, variables={"A": "1"})
    control.add_space("demo/sleepy", hardware="t4-small", stage="SLEEPING", start_seconds=5)
    control.set_price("t4-small", 1.2)

    headers = {"Authorization": f"Bearer {token}"}
    answer = requests.get(f"{hub_emulator.url}/api/spaces/alice-org/app/runtime", headers=headers, timeout=10)
    woken = control.visit("demo/sleepy")
    moved = control.advance(3600)

    assert answer.status_code == 200
    assert control.runtime("alice-org/app")["hardware"]["current"] == "t4-small"
    assert woken["stage"] == "APP_STARTING"
    assert moved == pytest.approx(control.now(), abs=1)
    assert control.ledger("alice-org/app")["usd"] == pytest.approx(1.2, abs=1e-3)
    assert set(control.ledger()["spaces"]) == {"alice-org/app", "demo/sleepy"}
    assert [e["owner"] for e in control.request_log("alice-org/app")] == ["alice"]
    assert control.write_token == hub_emulator.write_token
    assert control.read_token == hub_emulator.read_token


def test_both_scripting_apis_script_faults_quota_and_payment(control: Any, hub_emulator: HubEmulator) -> None:
    control.add_space("demo/app")
    fault = control.add_fault("server_error", space_id="demo/app", count=2, status=502)
    control.set_quota(50, 60)
    control.set_payment_method("demo", False)
    headers = {"Authorization": f"Bearer {hub_emulator.write_token}"}

    broken = requests.get(f"{hub_emulator.url}/api/spaces/demo/app/runtime", headers=headers, timeout=10)
    listed = control.faults()
    control.clear_faults()
    paid = requests.post(
        f"{hub_emulator.url}/api/spaces/demo/app/hardware",
        json={"flavor": "t4-small"},
        headers=headers,
        timeout=10,
    )

    assert fault["kind"] == "server_error" and fault["remaining"] == 2
    assert broken.status_code == 502
    assert [f["remaining"] for f in listed] == [1]
    assert control.faults() == []
    assert paid.status_code == 403
    assert paid.headers["RateLimit-Policy"] == '"fixed window";"api";q=50;w=60'


def test_both_scripting_apis_reset_the_hub(control: Any, hub_emulator: HubEmulator) -> None:
    control.add_space("demo/app")
    token = control.add_token("alice")
    control.add_fault("drop")

    control.reset()

    assert hub_emulator.hub.spaces == {} and control.faults() == [] and control.request_log() == []
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{hub_emulator.url}/api/whoami-v2", headers=headers, timeout=10).status_code == 401
    headers = {"Authorization": f"Bearer {hub_emulator.write_token}"}
    assert requests.get(f"{hub_emulator.url}/api/whoami-v2", headers=headers, timeout=10).status_code == 200


def test_both_scripting_apis_seed_the_demo_spaces(control: Any, hub_emulator: HubEmulator) -> None:
    seeded = control.seed_demo()

    assert sorted(seeded) == sorted(hub_emulator.hub.spaces)
    assert control.runtime("demo/static-docs")["hardware"] == {"current": None, "requested": None}
    assert control.runtime("demo/private-app")["stage"] == "RUNNING"


def test_both_scripting_apis_raise_the_same_errors(control: Any) -> None:
    control.add_space("demo/app")

    with pytest.raises(UnknownSpaceError, match="no Space 'demo/missing'"):
        control.runtime("demo/missing")
    with pytest.raises(ValueError, match="already exists"):
        control.add_space("demo/app")
    with pytest.raises(ValueError, match="space_id must look like 'namespace/name'"):
        control.add_space("no-namespace")
    with pytest.raises(ValueError, match="unknown fault kind"):
        control.add_fault("meteor")
    with pytest.raises(ValueError, match="speed must be a number above 0"):
        control.set_speed(0)
    with pytest.raises(ValueError, match="build_seconds must be 0 or more"):
        control.add_space("demo/negative", build_seconds=-1)


def test_the_admin_api_answers_json_for_an_unknown_path(hub_emulator: HubEmulator) -> None:
    answer = requests.get(f"{hub_emulator.url}/_emulator/nothing-here", timeout=10)

    assert answer.status_code == 404
    assert "error" in answer.json()


def test_the_admin_api_refuses_clients_that_are_not_on_loopback(hub_emulator: HubEmulator) -> None:
    # Only a loopback interface exists here, so a foreign client is emulated with a forged address.
    from starlette.testclient import TestClient

    from airflow_provider_spaces.emulator.app import build_app

    with TestClient(build_app(hub_emulator.hub), client=("192.0.2.10", 50000)) as client:
        answer = client.get("/_emulator/info")

    assert answer.status_code == 403
    assert "loopback" in answer.json()["error"]


# == the command line ==============================================================================


def _read_lines(process: subprocess.Popen[str], count: int, timeout: float) -> list[str]:
    """Read up to ``count`` lines of the process's output, giving up after ``timeout`` seconds."""
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stream = process.stdout

    def pump() -> None:
        for _ in range(count):
            line = stream.readline()
            if not line:
                return
            lines.put(line.strip())

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    reader.join(timeout)
    return [lines.get_nowait() for _ in range(lines.qsize())]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_the_command_line_serves_until_stopped(stop_signal: int) -> None:
    command = [
        sys.executable,
        "-m",
        "airflow_provider_spaces.emulator",
        "--port",
        "0",
        "--speed",
        "10",
        "--seed-demo",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        lines = _read_lines(process, 4, timeout=30)
        url = lines[0].split(" on ", 1)[1].split(" ", 1)[0]
        write_token = lines[1].rsplit(" ", 1)[1]
        read_token = lines[2].rsplit(" ", 1)[1]

        me = requests.get(
            f"{url}/api/whoami-v2", headers={"Authorization": f"Bearer {write_token}"}, timeout=10
        )
        demo = requests.get(
            f"{url}/api/spaces/demo/gpu-trainer/runtime",
            headers={"Authorization": f"Bearer {read_token}"},
            timeout=10,
        )
        info = EmulatorClient(url).runtime("demo/static-docs")
    finally:
        process.send_signal(stop_signal)
        out, _ = process.communicate(timeout=30)

    assert url.startswith("http://127.0.0.1:")
    assert me.json()["name"] == "demo"
    assert demo.status_code == 200
    assert info["hardware"] == {"current": None, "requested": None}
    assert "demo Spaces:" in lines[3]
    assert process.returncode == 0
    assert "stopped" in out


def test_the_command_line_needs_a_port() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "airflow_provider_spaces.emulator"], capture_output=True, text=True, timeout=60
    )

    assert shown.returncode == 2
    assert "--port" in shown.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--port", "70000"], r"argument --port: must be a whole number from 0 to 65535, not '70000'"),
        (["--port", "-1"], r"argument --port: must be a whole number from 0 to 65535, not '-1'"),
        (["--port", "eighty"], r"argument --port: must be a whole number from 0 to 65535, not 'eighty'"),
        (["--port", "0", "--speed", "inf"], r"argument --speed: must be a number above 0 and at most 1e\+06"),
        (["--port", "0", "--speed", "nan"], r"argument --speed: must be a number above 0"),
        (["--port", "0", "--speed", "0"], r"argument --speed: must be a number above 0"),
        (["--port", "0", "--speed", "fast"], r"argument --speed: must be a number above 0"),
    ],
    ids=[
        "port-too-high",
        "port-negative",
        "port-not-a-number",
        "speed-infinite",
        "speed-nan",
        "speed-zero",
        "speed-text",
    ],
)
def test_the_command_line_refuses_bad_arguments_with_a_usage_error(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(arguments)

    error = capsys.readouterr().err
    assert exited.value.code == 2
    assert re.search(message, error), error
    assert "Traceback" not in error


def test_the_command_line_says_in_one_line_that_the_port_is_in_use(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]

        code = main(["--port", str(port)])

    error = capsys.readouterr().err
    assert code == 2
    assert error.startswith(
        f"python -m airflow_provider_spaces.emulator: error: cannot serve on 127.0.0.1:{port}: "
    )
    assert "in use" in error.lower()
    assert error.count("\n") == 1


def test_seeded_demo_spaces_cover_the_access_cases() -> None:
    with HubEmulator(seed_demo=True) as hub:
        listed = json.loads(requests.get(f"{hub.url}/_emulator/spaces", timeout=10).text)["result"]

    assert "demo/static-docs" in listed and "someone-else/public-app" in listed
