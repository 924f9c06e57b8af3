"""Tokens, roles and owners: who may read and change which Space, and what each refusal says."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_spaces.emulator.server import HubEmulator

PUBLIC = "demo/public-app"
PRIVATE = "demo/private-app"
ORG = "demo-org/team-app"


@pytest.fixture
def spaces(still_hub: HubEmulator) -> HubEmulator:
    still_hub.add_space(PUBLIC)
    still_hub.add_space(PRIVATE, private=True)
    still_hub.add_space(ORG, private=True)
    return still_hub


def _token(hub: HubEmulator, who: str) -> str | None:
    return {
        "none": None,
        "bad": "hf_not_a_token_we_know",
        "write": hub.write_token,
        "read": hub.read_token,
        "stranger": hub.add_token("alice"),
    }[who]


@pytest.mark.parametrize(
    ("who", "method", "path", "status", "message"),
    [
        ("none", "GET", f"/api/spaces/{PUBLIC}/runtime", 401, "A token is required"),
        ("bad", "GET", f"/api/spaces/{PUBLIC}/runtime", 401, "Invalid credentials in Authorization header"),
        ("none", "GET", "/api/whoami-v2", 401, "A token is required"),
        ("bad", "GET", "/api/whoami-v2", 401, "Invalid credentials"),
        ("read", "GET", f"/api/spaces/{PRIVATE}/runtime", 200, None),
        ("read", "GET", f"/api/spaces/{PRIVATE}/secrets", 200, None),
        ("read", "POST", f"/api/spaces/{PUBLIC}/pause", 401, "role 'read'"),
        ("read", "POST", f"/api/spaces/{PUBLIC}/variables", 401, "role 'read'"),
        ("read", "POST", f"/api/spaces/{PUBLIC}/duplicate", 401, "role 'read'"),
        ("write", "POST", f"/api/spaces/{ORG}/pause", 200, None),
        ("stranger", "GET", f"/api/spaces/{PUBLIC}/runtime", 200, None),
        ("stranger", "GET", f"/api/spaces/{PUBLIC}/variables", 200, None),
        (
            "stranger",
            "POST",
            f"/api/spaces/{PUBLIC}/pause",
            403,
            "not allowed to manage Space demo/public-app",
        ),
        ("stranger", "GET", f"/api/spaces/{PUBLIC}/secrets", 403, "not allowed to manage"),
        ("stranger", "GET", f"/api/spaces/{PRIVATE}/runtime", 404, "Repository not found"),
        ("stranger", "POST", f"/api/spaces/{PRIVATE}/restart", 404, "Repository not found"),
        ("write", "GET", "/api/spaces/demo/never-made/runtime", 404, "Repository not found"),
    ],
    ids=[
        "no-token",
        "unknown-token",
        "whoami-no-token",
        "whoami-unknown-token",
        "read-token-reads-own-private-space",
        "read-token-lists-own-secrets",
        "read-token-cannot-pause",
        "read-token-cannot-set-variables",
        "read-token-cannot-duplicate",
        "write-token-changes-its-org-space",
        "stranger-reads-public-runtime",
        "stranger-reads-public-variables",
        "stranger-cannot-pause-public-space",
        "stranger-cannot-list-secrets",
        "stranger-cannot-see-private-space",
        "stranger-changing-private-space-gets-not-found",
        "missing-space",
    ],
)
def test_access_rules(
    spaces: HubEmulator, make_api: Any, who: str, method: str, path: str, status: int, message: str | None
) -> None:
    client = make_api(_token(spaces, who))
    body = {"key": "K", "value": "v", "repository": "demo/copy"} if method == "POST" else None

    answer = client.session.request(method, client.url + path, json=body, timeout=10)

    assert answer.status_code == status, answer.text
    if message is not None:
        assert message in answer.json()["error"]
        assert message in answer.headers["X-Error-Message"]


def test_a_token_never_appears_in_an_answer(spaces: HubEmulator, make_api: Any) -> None:
    bad = "hf_not_a_token_we_know"
    answers = [
        make_api(bad).get(f"/api/spaces/{PUBLIC}/runtime"),
        make_api(spaces.read_token).post(f"/api/spaces/{PUBLIC}/pause"),
    ]

    for answer in answers:
        text = answer.text + repr(dict(answer.headers))
        assert bad not in text and spaces.read_token not in text


def test_a_malformed_authorization_header_is_an_unknown_token(spaces: HubEmulator, make_api: Any) -> None:
    client = make_api(None)

    answer = client.get(
        f"/api/spaces/{PUBLIC}/runtime", headers={"Authorization": f"Token {spaces.write_token}"}
    )

    assert answer.status_code == 401


def test_the_hardware_catalog_needs_no_token(make_api: Any) -> None:
    assert make_api(None).get("/api/spaces/hardware").status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (f"/api/spaces/{PUBLIC}/hardware", {"flavor": "a10g-large"}),
        (f"/api/spaces/{PUBLIC}/storage", {"tier": "small"}),
        (f"/api/spaces/{PUBLIC}/duplicate", {"repository": "demo/gpu-copy", "hardware": "t4-small"}),
    ],
    ids=["paid-hardware", "storage", "duplicate-on-paid-hardware"],
)
def test_paid_resources_need_a_payment_method(
    spaces: HubEmulator, api: Any, path: str, body: dict[str, Any]
) -> None:
    spaces.set_payment_method("demo", False)

    answer = api.post(path, json=body)

    assert answer.status_code == 403
    assert answer.headers["X-Error-Code"] == "PaymentRequired"
    assert "no payment method" in answer.json()["error"]


def test_free_hardware_needs_no_payment_method(spaces: HubEmulator, api: Any) -> None:
    spaces.set_payment_method("demo", False)
    spaces.add_space("demo/gpu", hardware="t4-small")

    assert api.post("/api/spaces/demo/gpu/hardware", json={"flavor": "cpu-basic"}).status_code == 200


def test_a_restored_payment_method_allows_paid_hardware_again(spaces: HubEmulator, api: Any) -> None:
    spaces.set_payment_method("demo", False)
    spaces.set_payment_method("demo", True)

    assert api.post(f"/api/spaces/{PUBLIC}/hardware", json={"flavor": "t4-small"}).status_code == 200


def test_add_token_refuses_an_unknown_role(still_hub: HubEmulator) -> None:
    with pytest.raises(ValueError, match="role must be 'read' or 'write'"):
        still_hub.add_token("alice", role="admin")
