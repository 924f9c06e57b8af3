"""Reading a ``huggingface_spaces`` connection into Hub settings: host forms, extras, bad values."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from airflow.sdk import Connection

from airflow_provider_spaces._provider_info import EXTRA_FIELDS
from airflow_provider_spaces.hooks.connection import (
    PUBLIC_HUB,
    HubSettings,
    InvalidConnectionError,
    settings_from_connection,
)
from airflow_provider_spaces.hub import InvalidArgumentError
from airflow_provider_spaces.hub.client import DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT
from airflow_provider_spaces.hub.pacing import DEFAULT_QUOTA, DEFAULT_WINDOW_SECONDS
from airflow_provider_spaces.hub.retry import RetryPolicy

TOKEN = "hf_settings_test_token_5b0a9e"


def connection(**fields: Any) -> Connection:
    extra = fields.pop("extra", None)
    return Connection(
        conn_id="hub",
        conn_type="huggingface_spaces",
        extra=json.dumps(extra) if isinstance(extra, dict | list) else extra,
        **fields,
    )


@pytest.mark.parametrize(
    ("host", "port", "endpoint"),
    [
        ("https://hub.example.com", None, "https://hub.example.com"),
        ("http://127.0.0.1:8080", None, "http://127.0.0.1:8080"),
        ("hub.example.com", None, "https://hub.example.com"),
        ("hub.example.com:8443", None, "https://hub.example.com:8443"),
        ("  https://hub.example.com/  ", None, "https://hub.example.com"),
        ("https://proxy.example.com/hub/", None, "https://proxy.example.com/hub"),
        ("HTTPS://hub.example.com", None, "https://hub.example.com"),
        ("127.0.0.1", 8080, "https://127.0.0.1:8080"),
        ("http://127.0.0.1", 8080, "http://127.0.0.1:8080"),
        ("http://127.0.0.1:9000", 8080, "http://127.0.0.1:9000"),
    ],
    ids=[
        "full-https-url",
        "http-loopback-with-port",
        "bare-host-means-https",
        "bare-host-with-port",
        "white-space-and-trailing-slash-dropped",
        "path-prefix-kept",
        "scheme-case-folded",
        "port-field-added-to-bare-host",
        "port-field-added-to-url",
        "port-in-url-wins-over-port-field",
    ],
)
def test_host_forms_give_the_endpoint(host, port, endpoint):
    assert settings_from_connection(connection(host=host, port=port)).endpoint == endpoint


def test_empty_host_uses_hf_endpoint_like_the_hugging_face_tools(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:7000/")

    assert settings_from_connection(connection(host="")).endpoint == "http://127.0.0.1:7000"


def test_empty_host_without_hf_endpoint_means_the_public_hub(monkeypatch):
    # Only parsed here: nothing is sent anywhere.
    monkeypatch.delenv("HF_ENDPOINT")

    assert settings_from_connection(connection(host=None)).endpoint == PUBLIC_HUB == "https://huggingface.co"


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("ftp://hub.example.com", "must use http or https, not 'ftp'"),
        (f"https://user:{TOKEN}@hub.example.com", "put the token in the password field"),
        ("https://hub.example.com/?token=x", "expected a URL such as https://huggingface.co"),
        ("https://", "expected a URL such as https://huggingface.co"),
        ("hub.example.com:99999", "is not a valid port number"),
        ("hub.example.com:http", "is not a valid port number"),
    ],
    ids=[
        "other-scheme",
        "credentials-in-url",
        "query-string",
        "no-host",
        "port-out-of-range",
        "port-not-a-number",
    ],
)
def test_bad_host_is_refused_naming_the_connection_field(host, message):
    with pytest.raises(InvalidConnectionError, match=re.escape(message)) as raised:
        settings_from_connection(connection(host=host))

    assert raised.value.argument == "connection 'hub' host"
    assert TOKEN not in str(raised.value)


def test_malformed_hf_endpoint_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "ftp://mirror.example.com")

    with pytest.raises(InvalidConnectionError, match=r"Invalid HF_ENDPOINT: the Hub endpoint must use http"):
        settings_from_connection(connection(host=None))


@pytest.mark.parametrize(
    ("password", "token"),
    [(TOKEN, TOKEN), (f"  {TOKEN}\n", TOKEN), ("", None), (None, None), ("   ", None)],
    ids=["token", "white-space-stripped", "empty-means-anonymous", "unset-means-anonymous", "blank"],
)
def test_token_comes_from_the_password(password, token):
    assert settings_from_connection(connection(host="h.example", password=password)).token == token


def test_unset_extras_keep_the_client_defaults():
    settings = settings_from_connection(connection(host="h.example"))

    assert (settings.connect_timeout, settings.read_timeout) == (None, None)
    assert (settings.max_retries, settings.max_retry_wait) == (None, None)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"connect_timeout": 5, "read_timeout": 12.5, "max_retries": 2, "max_retry_wait": 60},
            (5.0, 12.5, 2, 60.0),
        ),
        (
            {"connect_timeout": "5", "read_timeout": "12.5", "max_retries": "2", "max_retry_wait": "0"},
            (5.0, 12.5, 2, 0.0),
        ),
        ({"max_retries": 0, "max_retry_wait": 0}, (None, None, 0, 0.0)),
        ({"max_retries": 3.0}, (None, None, 3, None)),
        ({"read_timeout": None, "connect_timeout": ""}, (None, None, None, None)),
        ({"extra__huggingface_spaces__read_timeout": 9}, (None, 9.0, None, None)),
        ({"extra__huggingface_spaces__read_timeout": 9, "read_timeout": 4}, (None, 4.0, None, None)),
        ({"read_timeout": 4, "extra__huggingface_spaces__read_timeout": 9}, (None, 4.0, None, None)),
        ("", (None, None, None, None)),
    ],
    ids=[
        "numbers",
        "numeric-strings-from-a-uri",
        "zero-retries-and-zero-wait-allowed",
        "integral-float-count",
        "empty-form-fields",
        "prefixed-form-key",
        "short-key-wins-when-after",
        "short-key-wins-when-before",
        "empty-extra",
    ],
)
def test_extras_set_timeouts_and_retries(extra, expected):
    settings = settings_from_connection(connection(host="h.example", extra=extra))

    assert (
        settings.connect_timeout,
        settings.read_timeout,
        settings.max_retries,
        settings.max_retry_wait,
    ) == expected


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, (None, None)),
        ({"rate_limit_quota": 2500, "rate_limit_window": 300}, (2500, 300.0)),
        ({"rate_limit_quota": "500", "rate_limit_window": "60.5"}, (500, 60.5)),
    ],
    ids=["unset-keeps-the-free-quota", "a-pro-quota", "numeric-strings-from-a-uri"],
)
def test_extras_set_the_rate_limit_budget(extra, expected):
    settings = settings_from_connection(connection(host="h.example", extra=extra))

    assert (settings.rate_limit_quota, settings.rate_limit_window) == expected


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"rate_limit_quota": 0}, "extra 'rate_limit_quota': must be a whole number, 1 or more, not 0"),
        ({"rate_limit_quota": 99.5}, "extra 'rate_limit_quota': must be a whole number, 1 or more, not 99.5"),
        ({"rate_limit_window": 0}, "extra 'rate_limit_window': must be a number of seconds, greater than 0"),
    ],
    ids=["no-calls-at-all", "fractional-quota", "empty-window"],
)
def test_a_rate_limit_that_allows_nothing_is_refused(extra, message):
    with pytest.raises(InvalidConnectionError, match=re.escape(message)):
        settings_from_connection(connection(host="h.example", extra=extra))


@pytest.mark.parametrize(
    ("extra", "argument", "message"),
    [
        ({"read_timeout": 0}, "extra 'read_timeout'", "must be a number of seconds, greater than 0, not 0"),
        ({"connect_timeout": -1}, "extra 'connect_timeout'", "greater than 0, not -1"),
        ({"read_timeout": "soon"}, "extra 'read_timeout'", "must be a number of seconds, not 'soon'"),
        ({"read_timeout": True}, "extra 'read_timeout'", "must be a number of seconds, not True"),
        ({"read_timeout": [30]}, "extra 'read_timeout'", "must be a number of seconds, not [30]"),
        ({"read_timeout": "nan"}, "extra 'read_timeout'", "not 'nan'"),
        ({"connect_timeout": "inf"}, "extra 'connect_timeout'", "not 'inf'"),
        ({"max_retry_wait": -5}, "extra 'max_retry_wait'", "must be a number of seconds, 0 or more, not -5"),
        ({"max_retries": 1.5}, "extra 'max_retries'", "must be a whole number, 0 or more, not 1.5"),
        ({"max_retries": -1}, "extra 'max_retries'", "must be a whole number, 0 or more, not -1"),
        ({"max_retries": "many"}, "extra 'max_retries'", "must be a whole number, not 'many'"),
        ("{not json", "extra", "is not valid JSON"),
        ([1, 2], "extra", "must be a JSON object"),
    ],
    ids=[
        "zero-timeout",
        "negative-timeout",
        "word-for-timeout",
        "boolean-timeout",
        "list-for-timeout",
        "nan-timeout",
        "infinite-timeout",
        "negative-retry-wait",
        "fractional-retries",
        "negative-retries",
        "word-for-retries",
        "extra-not-json",
        "extra-not-an-object",
    ],
)
def test_bad_extra_is_refused_naming_the_field(extra, argument, message):
    with pytest.raises(InvalidConnectionError, match=re.escape(message)) as raised:
        settings_from_connection(connection(host="h.example", password=TOKEN, extra=extra))

    assert raised.value.argument == f"connection 'hub' {argument}"
    assert str(raised.value).startswith(f"Invalid connection 'hub' {argument}: ")
    assert TOKEN not in str(raised.value)


def test_a_bad_setting_is_a_final_invalid_argument_and_a_value_error():
    with pytest.raises(InvalidConnectionError) as raised:
        settings_from_connection(connection(host="h.example", extra={"read_timeout": 0}))

    assert isinstance(raised.value, InvalidArgumentError)
    assert isinstance(raised.value, ValueError)
    assert raised.value.is_final


def test_unknown_extra_keys_are_named_in_a_warning_without_their_values(caplog):
    extra = {"read_timout": 30, "token": TOKEN, "read_timeout": 30}

    with caplog.at_level(logging.WARNING, logger="airflow_provider_spaces.hooks.connection"):
        settings = settings_from_connection(connection(host="h.example", extra=extra))

    assert settings.read_timeout == 30.0
    assert "Connection 'hub': ignoring unknown extra keys read_timout, token" in caplog.text
    assert TOKEN not in caplog.text


def test_settings_repr_leaves_the_token_out():
    settings = HubSettings(endpoint="http://127.0.0.1:9", token=TOKEN, source="connection 'hub'")

    assert TOKEN not in repr(settings)
    assert "http://127.0.0.1:9" in repr(settings)


def test_defaults_quoted_in_the_form_are_the_clients():
    quoted = {
        name: float(re.search(r"Empty: ([\d.]+)\.", f.description)[1]) for name, f in EXTRA_FIELDS.items()
    }
    policy = RetryPolicy()

    assert quoted == {
        "connect_timeout": DEFAULT_CONNECT_TIMEOUT,
        "read_timeout": DEFAULT_READ_TIMEOUT,
        "max_retries": policy.max_attempts - 1,
        "max_retry_wait": policy.total_timeout,
        "rate_limit_quota": DEFAULT_QUOTA,
        "rate_limit_window": DEFAULT_WINDOW_SECONDS,
    }
