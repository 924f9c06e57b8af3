"""Parsing what the Hub returns: runtimes of every shape, variables, secrets, the catalog, identities."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_provider_spaces.hub.catalog import KNOWN_FLAVORS
from airflow_provider_spaces.hub.errors import UnexpectedResponseError
from airflow_provider_spaces.hub.models import (
    AT_REST_STAGES,
    ERROR_STAGES,
    IN_MOTION_STAGES,
    HardwareInfo,
    SpaceHardware,
    SpaceInfo,
    SpaceRuntime,
    SpaceSecret,
    SpaceStage,
    SpaceStorage,
    SpaceVariable,
    WhoAmI,
    at_rest,
    in_motion,
    is_error,
    is_known_stage,
)

ENDPOINT = "http://127.0.0.1:9"


def parse(payload: Any, space_id: str = "demo/app") -> SpaceRuntime:
    return SpaceRuntime.from_payload(space_id, payload, endpoint=ENDPOINT, request_id="req-1")


class TestSpaceRuntime:
    def test_a_full_runtime_reads_every_field(self) -> None:
        runtime = parse(
            {
                "stage": "RUNNING_BUILDING",
                "hardware": {"current": "cpu-basic", "requested": "a10g-large"},
                "storage": "small",
                "gcTimeout": 3600,
                "devMode": True,
                "replicas": {"requested": 1, "current": 1},
                "errorMessage": None,
            }
        )

        assert runtime.stage is SpaceStage.RUNNING_BUILDING
        assert runtime.hardware is SpaceHardware.CPU_BASIC
        assert runtime.requested_hardware is SpaceHardware.A10G_LARGE
        assert runtime.storage is SpaceStorage.SMALL
        assert runtime.sleep_time == 3600
        assert runtime.dev_mode is True
        assert runtime.error_message is None
        assert runtime.url == f"{ENDPOINT}/spaces/demo/app"
        assert runtime.request_id == "req-1"
        assert runtime.raw["replicas"] == {"requested": 1, "current": 1}

    def test_the_smallest_runtime_has_only_a_stage(self) -> None:
        runtime = parse({"stage": "BUILDING"})

        assert runtime.stage == "BUILDING"
        assert runtime.hardware is None
        assert runtime.requested_hardware is None
        assert runtime.sleep_time is None
        assert runtime.storage is None
        assert runtime.dev_mode is False

    def test_a_static_space_runs_without_hardware_or_sleep_time(self) -> None:
        runtime = parse(
            {"stage": "RUNNING", "hardware": {"current": None, "requested": None}, "storage": None}
        )

        assert runtime.stage is SpaceStage.RUNNING
        assert runtime.hardware is None
        assert runtime.sleep_time is None
        assert not runtime.arrived("cpu-basic")

    @pytest.mark.parametrize(
        "payload",
        [
            {"stage": "RUNNING", "hardware": None, "gcTimeout": None, "devMode": None, "storage": None},
            {"stage": "RUNNING", "hardware": "cpu-basic", "gcTimeout": "soon"},
            {"stage": "RUNNING", "hardware": {"current": 3}, "gcTimeout": True, "errorMessage": 12},
        ],
        ids=["nulls", "wrong-shapes", "wrong-types"],
    )
    def test_null_or_odd_keys_other_than_stage_never_break_parsing(self, payload: dict[str, Any]) -> None:
        runtime = parse(payload)

        assert runtime.stage is SpaceStage.RUNNING
        assert runtime.hardware is None
        assert runtime.sleep_time is None
        assert runtime.error_message is None

    def test_unknown_stage_and_flavor_are_carried_as_strings(self) -> None:
        runtime = parse({"stage": "HIBERNATING", "hardware": {"current": "h200x8", "requested": "h200x8"}})

        assert runtime.stage == "HIBERNATING"
        assert not isinstance(runtime.stage, SpaceStage)
        assert runtime.hardware == "h200x8"
        assert not isinstance(runtime.hardware, SpaceHardware)
        assert not runtime.in_motion and not runtime.is_error and not runtime.at_rest

    @pytest.mark.parametrize(
        "payload",
        [{}, {"stage": None}, {"stage": ""}, {"hardware": {"current": "cpu-basic"}}, ["RUNNING"], None],
        ids=["empty", "null-stage", "empty-stage", "no-stage", "a-list", "null"],
    )
    def test_a_runtime_without_stage_is_refused(self, payload: Any) -> None:
        with pytest.raises(UnexpectedResponseError, match="Space demo/app: the runtime .* has no stage"):
            parse(payload)

    def test_the_never_sleep_setting_reads_as_minus_one(self) -> None:
        assert parse({"stage": "RUNNING", "gcTimeout": -1}).sleep_time == -1

    def test_an_error_stage_keeps_the_hubs_message(self) -> None:
        runtime = parse({"stage": "BUILD_ERROR", "errorMessage": "pip failed: no matching torch"})

        assert runtime.is_error
        assert runtime.error_message == "pip failed: no matching torch"

    def test_to_dict_is_the_small_json_summary_for_xcom(self) -> None:
        runtime = parse(
            {
                "stage": "RUNNING",
                "hardware": {"current": "a10g-large", "requested": "a10g-large"},
                "gcTimeout": 600,
            }
        )

        summary = runtime.to_dict()

        assert summary == {
            "space_id": "demo/app",
            "stage": "RUNNING",
            "hardware": "a10g-large",
            "requested_hardware": "a10g-large",
            "sleep_time": 600,
            "storage": None,
            "url": f"{ENDPOINT}/spaces/demo/app",
        }
        assert all(type(value) in (str, int, type(None)) for value in summary.values())
        assert json.loads(json.dumps(summary)) == summary

    def test_to_dict_adds_the_error_message_only_when_there_is_one(self) -> None:
        summary = parse({"stage": "RUNTIME_ERROR", "errorMessage": "CUDA out of memory"}).to_dict()

        assert summary["error_message"] == "CUDA out of memory"
        assert summary["stage"] == "RUNTIME_ERROR"

    def test_to_dict_carries_unknown_values_as_plain_strings(self) -> None:
        summary = parse({"stage": "HIBERNATING", "hardware": {"current": "h200x8"}}).to_dict()

        assert summary["stage"] == "HIBERNATING"
        assert summary["hardware"] == "h200x8"

    @pytest.mark.parametrize(
        ("stage", "current", "expected"),
        [
            ("RUNNING", "a10g-large", True),
            ("RUNNING", "cpu-basic", False),
            ("APP_STARTING", "a10g-large", False),
            ("RUNNING_BUILDING", "a10g-large", False),
        ],
        ids=["running-on-it", "running-on-the-old-flavor", "starting-on-it", "rebuilding"],
    )
    def test_arrived_means_running_on_the_flavor(self, stage: str, current: str, expected: bool) -> None:
        runtime = parse({"stage": stage, "hardware": {"current": current, "requested": "a10g-large"}})

        assert runtime.arrived("a10g-large") is expected

    def test_the_raw_payload_stays_out_of_the_repr(self) -> None:
        assert "domains" not in repr(parse({"stage": "RUNNING", "domains": [{"domain": "x.hf.space"}]}))

    def test_a_runtime_kept_without_its_payload_keeps_every_modelled_field(self) -> None:
        runtime = parse(
            {
                "stage": "RUNTIME_ERROR",
                "hardware": {"current": "a10g-large", "requested": "t4-small"},
                "gcTimeout": 600,
                "errorMessage": "CUDA out of memory",
                "domains": [{"domain": "x.hf.space", "stage": "READY"}],
            }
        )

        kept = runtime.without_payload()

        assert kept == runtime
        assert kept.to_dict() == runtime.to_dict()
        assert (kept.request_id, kept.error_message) == (runtime.request_id, runtime.error_message)
        assert dict(kept.raw) == {}
        assert "domains" in runtime.raw


class TestStages:
    def test_every_known_stage_belongs_to_exactly_one_group(self) -> None:
        groups = [IN_MOTION_STAGES, ERROR_STAGES, AT_REST_STAGES]

        for stage in SpaceStage:
            assert sum(stage in group for group in groups) == 1, stage

    @pytest.mark.parametrize(
        ("stage", "moving", "error", "resting"),
        [
            ("BUILDING", True, False, False),
            ("RUNNING_APP_STARTING", True, False, False),
            ("CONFIG_ERROR", False, True, False),
            ("NO_APP_FILE", False, True, False),
            ("PAUSED", False, False, True),
            ("SLEEPING", False, False, True),
            ("SOMETHING_NEW", False, False, False),
        ],
        ids=[
            "building",
            "running-app-starting",
            "config-error",
            "no-app-file",
            "paused",
            "sleeping",
            "unknown",
        ],
    )
    def test_predicates_accept_members_and_plain_strings(
        self, stage: str, moving: bool, error: bool, resting: bool
    ) -> None:
        assert (in_motion(stage), is_error(stage), at_rest(stage)) == (moving, error, resting)

    def test_parse_returns_the_member_or_the_string(self) -> None:
        assert SpaceStage.parse("PAUSED") is SpaceStage.PAUSED
        assert SpaceStage.parse("NEW_STAGE") == "NEW_STAGE"
        assert is_known_stage("SLEEPING")
        assert not is_known_stage("NEW_STAGE")

    def test_members_read_as_their_value_in_messages(self) -> None:
        assert str(SpaceStage.RUNNING) == "RUNNING"
        assert f"{SpaceHardware.A10G_LARGE}" == "a10g-large"
        assert SpaceHardware.A10G_LARGE == "a10g-large"

    def test_the_hardware_enum_matches_the_built_in_catalog(self) -> None:
        assert {member.value for member in SpaceHardware} == set(KNOWN_FLAVORS)


class TestSecretsAndVariables:
    def test_a_variable_reads_value_description_and_update_time(self) -> None:
        variable = SpaceVariable.from_payload(
            "MODEL_ID",
            {"value": "org/model", "description": "which model", "updatedAt": "2026-03-01T10:00:00.000Z"},
        )

        assert variable == SpaceVariable(
            "MODEL_ID", "org/model", "which model", datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
        )

    def test_a_variable_with_only_a_value_parses(self) -> None:
        variable = SpaceVariable.from_payload("A", {"value": "1"})

        assert (variable.value, variable.description, variable.updated_at) == ("1", None, None)

    def test_an_unreadable_update_time_is_left_out(self) -> None:
        assert SpaceVariable.from_payload("A", {"value": "1", "updatedAt": "yesterday"}).updated_at is None

    def test_a_secret_has_no_value_field_at_all(self) -> None:
        secret = SpaceSecret.from_payload("HF_TOKEN", {"description": "for the model", "value": "leaked?"})

        assert secret == SpaceSecret("HF_TOKEN", "for the model", None)
        assert not hasattr(secret, "value")
        assert "leaked" not in repr(secret)


class TestHardwareInfo:
    def test_a_catalog_entry_reads_price_and_accelerator(self) -> None:
        info = HardwareInfo.from_payload(
            {
                "name": "a10g-large",
                "prettyName": "Nvidia A10G - large",
                "cpu": "12 vCPU",
                "ram": "46 GB",
                "accelerator": {
                    "type": "gpu",
                    "model": "a10g",
                    "quantity": 1,
                    "vram": "24 GB",
                    "manufacturer": "Nvidia",
                },
                "unitCostMicroUSD": 25000,
                "unitCostUSD": 0.025,
                "unitLabel": "minute",
            }
        )

        assert info is not None
        assert info.name is SpaceHardware.A10G_LARGE
        assert info.accelerator is not None and info.accelerator.quantity == 1
        assert info.usd_per_hour == pytest.approx(1.5)

    def test_a_cpu_entry_has_no_accelerator_and_an_unknown_unit_has_no_hourly_price(self) -> None:
        info = HardwareInfo.from_payload(
            {"name": "new-cpu", "accelerator": None, "unitCostUSD": 1, "unitLabel": "call"}
        )

        assert info is not None
        assert info.name == "new-cpu"
        assert info.accelerator is None
        assert info.usd_per_hour is None

    def test_an_entry_without_a_name_is_skipped(self) -> None:
        assert HardwareInfo.from_payload({"prettyName": "mystery"}) is None


class TestWhoAmIAndSpaceInfo:
    def test_whoami_reads_name_role_and_orgs(self) -> None:
        who = WhoAmI.from_payload(
            {
                "type": "user",
                "name": "alice",
                "auth": {"type": "access_token", "accessToken": {"role": "write", "displayName": "ci"}},
                "orgs": [{"name": "acme"}, {"name": "labs"}, {}],
            }
        )

        assert (who.name, who.type, who.token_role) == ("alice", "user", "write")
        assert who.namespaces == ("alice", "acme", "labs")

    def test_whoami_without_a_name_is_refused(self) -> None:
        with pytest.raises(UnexpectedResponseError, match="no account name"):
            WhoAmI.from_payload({"type": "user"})

    def test_space_info_carries_the_runtime_when_present(self) -> None:
        info = SpaceInfo.from_payload(
            "demo/app",
            {"id": "demo/app", "private": True, "sdk": "gradio", "runtime": {"stage": "PAUSED"}},
            endpoint=ENDPOINT,
        )

        assert info.private is True
        assert info.runtime is not None and info.runtime.stage is SpaceStage.PAUSED

    def test_space_info_without_a_usable_runtime_has_none(self) -> None:
        info = SpaceInfo.from_payload("demo/app", {"id": "demo/app", "runtime": {}}, endpoint=ENDPOINT)

        assert info.runtime is None
