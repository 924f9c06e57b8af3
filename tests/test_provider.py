"""How Airflow discovers the provider and renders its connection form, on the running release."""

from __future__ import annotations

import json
import subprocess
import sys
import types
import warnings
from importlib.resources import files
from typing import Any

import jsonschema
import pytest
from airflow.providers_manager import ProvidersManager
from airflow.sdk import Connection

from airflow_provider_spaces import get_provider_info
from airflow_provider_spaces._compat import AIRFLOW_V_3_2_PLUS
from airflow_provider_spaces._provider_info import EXTRA_FIELDS, HOOK_CLASS

PACKAGE = "airflow-provider-spaces"
CONN_TYPE = "huggingface_spaces"


@pytest.fixture
def fresh_providers_manager(monkeypatch: pytest.MonkeyPatch) -> ProvidersManager:
    """Return a providers manager that discovers everything anew, as a starting Airflow does.

    It is built beside the process-wide one, which stays as it was for the other tests.
    """
    monkeypatch.setattr(ProvidersManager, "_initialized", False)
    manager = object.__new__(ProvidersManager)
    manager.__init__()  # type: ignore[misc]
    return manager


@pytest.fixture
def fab_form_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand in for the form libraries of Airflow's FAB extra when they are not installed.

    Airflow 3.1 asks a hook for its form only when ``wtforms`` imports, and its API server then
    swaps every form class for its own recording stand-ins; ours only need to exist and look like
    a form field. Airflow 3.2 and later need neither.
    """
    if AIRFLOW_V_3_2_PLUS:
        return
    try:
        import wtforms  # noqa: F401
    except ImportError:
        pass
    else:
        return

    class _Field:
        widget = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.field_class = type(self)

    def module(name: str, **attributes: Any) -> None:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
        for key, value in attributes.items():
            setattr(sys.modules[name], key, value)

    fields = {name: _Field for name in ("StringField", "IntegerField", "PasswordField", "BooleanField")}
    module("wtforms", **fields)
    module("wtforms.fields", **fields)
    module("wtforms.fields.simple", **fields)
    module("wtforms.validators", Optional=_Field, any_of=_Field)
    module("flask_babel", lazy_gettext=str)
    module("flask_appbuilder")
    widgets = ("BS3TextFieldWidget", "BS3TextAreaFieldWidget", "BS3PasswordFieldWidget")
    module("flask_appbuilder.fieldwidgets", **dict.fromkeys(widgets, _Field))


def test_provider_info_is_valid_for_the_running_airflow():
    schema = json.loads(files("airflow").joinpath("provider_info.schema.json").read_text())

    jsonschema.validate(get_provider_info(), schema)


def test_getting_the_provider_info_imports_neither_airflow_nor_an_http_stack():
    # Airflow calls get_provider_info while it is itself being imported.
    code = (
        "import sys, airflow_provider_spaces as p; p.get_provider_info(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'requests', 'httpx')))"
    )

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert done.stdout.strip() == "[]"


def test_providers_manager_lists_the_package_with_its_version(fresh_providers_manager):
    provider = fresh_providers_manager.providers[PACKAGE]

    assert provider.version == get_provider_info()["versions"][0]
    assert provider.data["name"] == "Hugging Face Spaces"


def test_providers_list_command_shows_the_package(capsys):
    from airflow.cli import cli_parser

    args = cli_parser.get_parser().parse_args(["providers", "list", "--output", "json"])
    args.func(args)

    listed = {row["package_name"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed[PACKAGE]["version"] == get_provider_info()["versions"][0]


def test_connection_type_resolves_to_the_spaces_hook():
    # The way Airflow's connection test and BaseHook.get_hook find the hook for a connection.
    hook = Connection(conn_id="resolved", conn_type=CONN_TYPE).get_hook()

    assert type(hook).__module__ + "." + type(hook).__qualname__ == HOOK_CLASS
    assert hook.spaces_conn_id == "resolved"


def test_loading_the_hook_and_its_form_raises_no_deprecation_warning(
    fresh_providers_manager, fab_form_libraries
):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Airflow imports every hook to list the forms of all connection types.
        assert CONN_TYPE in fresh_providers_manager.field_behaviours

    ours = [
        w for w in caught if "airflow_provider_spaces" in str(w.message) or "SpacesHook" in str(w.message)
    ]
    assert ours == []


def test_trigger_module_is_listed_without_being_imported(fresh_providers_manager):
    before = set(sys.modules)

    listed = {
        info.trigger_class_name for info in fresh_providers_manager.trigger if info.package_name == PACKAGE
    }

    assert listed == {"airflow_provider_spaces.triggers.spaces"}
    assert "airflow_provider_spaces.triggers.spaces" not in set(sys.modules) - before


@pytest.fixture
def connection_form(fresh_providers_manager, fab_form_libraries) -> Any:
    """Return the connection form metadata the API server sends the UI for our connection type."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    HookMetaService.hook_meta_data.cache_clear()
    try:
        forms = {meta.connection_type: meta for meta in HookMetaService.hook_meta_data()}
    finally:
        HookMetaService.hook_meta_data.cache_clear()
    return forms[CONN_TYPE]


def test_connection_form_names_the_type_and_its_hook(connection_form):
    assert connection_form.hook_name == "Hugging Face Spaces"
    assert connection_form.hook_class_name == HOOK_CLASS


def test_connection_form_relabels_host_and_password_and_hides_the_rest(connection_form):
    fields = connection_form.standard_fields

    assert (fields.host.title, fields.host.placeholder) == ("Hub endpoint", "https://huggingface.co")
    assert fields.password.title == "Hugging Face token"
    assert fields.password.placeholder.startswith("hf_")
    assert fields.url_schema.hidden and fields.port.hidden and fields.login.hidden
    assert not fields.host.hidden and not fields.password.hidden


def test_connection_form_offers_timeouts_and_retries_as_whole_numbers(connection_form):
    extra = connection_form.extra_fields

    assert list(extra) == list(EXTRA_FIELDS)
    for name, field in EXTRA_FIELDS.items():
        assert extra[name]["schema"]["title"] == field.label
        assert extra[name]["schema"]["type"] == ["integer", "null"]
        assert extra[name]["description"] == field.description


def test_form_comes_from_the_provider_info_on_3_2_plus_and_from_the_hook_on_3_1(
    fresh_providers_manager, fab_form_libraries, monkeypatch
):
    monkeypatch.delitem(sys.modules, "airflow_provider_spaces.hooks.spaces", raising=False)

    if AIRFLOW_V_3_2_PLUS:
        metas = {
            meta.connection_type: meta
            for meta in fresh_providers_manager.iter_connection_type_hook_ui_metadata()
        }
        assert metas[CONN_TYPE].field_behaviour["hidden_fields"] == ["schema", "port", "login"]
        assert "airflow_provider_spaces.hooks.spaces" not in sys.modules
    else:
        assert fresh_providers_manager.field_behaviours[CONN_TYPE]["hidden_fields"] == [
            "schema",
            "port",
            "login",
        ]
        assert "airflow_provider_spaces.hooks.spaces" in sys.modules
