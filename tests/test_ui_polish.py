"""Pilot tests of the QA polish pass: the unreachable state of Schedules/Files/Logs and their
recovery on retry, the Connect form's escape, placeholders that fit, the help ordering, the
palette's DESIGN §6 commands, and wording (plurals, empty states)."""

from __future__ import annotations

import base64
import json
import socket
import time

import pytest

from console.connection import Connection
from console.sessions import Settings
from screens.app import ConsoleApp
from screens.files import FilesScreen
from screens.logs import LogsScreen
from screens.query import QuerySpec
from screens.schedules import SchedulesScreen
from screens.widgets.filter_editor import FilterEditor
from textual.widgets import Input, OptionList
from ui_support import connect, until

pytestmark = pytest.mark.timeout(90)
SIZE = (160, 45)


@pytest.fixture(autouse=True)
def private_config(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVEX_CONSOLE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("CONVEX_CONSOLE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "config"


def text_of(screen, selector: str) -> str:
    return str(screen.query_one(selector).render())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- unreachable deployment, then retry ------------------------------------------------------------


async def test_unreachable_is_shown_honestly_and_retry_recovers(emulator_factory, tmp_path):
    data_dir = tmp_path / "deployment"
    first = emulator_factory(data_dir=str(data_dir))  # only to learn the admin key kept in data_dir
    admin_key = first.admin_key
    first.stop()
    port, site_port = free_port(), free_port()
    connection = Connection.create(f"http://127.0.0.1:{port}", admin_key=admin_key, kind="emulator")
    app = ConsoleApp(connection, "test", None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.connection_state == "unreachable")
        await pilot.press("3")
        await until(pilot, lambda: isinstance(app.screen, SchedulesScreen))
        schedules = app.screen
        await until(pilot, lambda: "deployment unreachable" in text_of(schedules, "#jobs-bar"))
        assert "connecting" not in text_of(schedules, "#jobs-bar")

        await pilot.press("4")
        await until(pilot, lambda: isinstance(app.screen, FilesScreen))
        files = app.screen
        await until(pilot, lambda: "cannot load" in text_of(files, "#files-bar"))
        assert "of ?" not in text_of(files, "#files-bar") and "r retries" in text_of(files, "#files-bar")

        await pilot.press("7")
        await until(pilot, lambda: isinstance(app.screen, LogsScreen))
        logs = app.screen
        await until(pilot, lambda: "not receiving" in text_of(logs, "#logs-state"))
        assert "● live" not in text_of(logs, "#logs-state")

        # The deployment comes up where the console looks for it; r retries.
        emulator_factory(data_dir=str(data_dir), port=port, site_port=site_port)
        await pilot.press("r")
        await until(pilot, lambda: app.connection_state == "connected")
        await until(pilot, lambda: "● live" in text_of(logs, "#logs-state"), timeout=20)
        await pilot.press("4")
        await until(pilot, lambda: "No files yet — u to upload" in text_of(files, "#files-bar"))
        await pilot.press("3")
        await until(pilot, lambda: schedules.loaded and "unreachable" not in text_of(schedules, "#jobs-bar"))
        assert text_of(schedules, "#jobs-bar").startswith("0 jobs")


# -- Connect: escape leaves the form; placeholders fit ---------------------------------------------


async def test_connect_form_escape_and_placeholders(private_config):
    app = ConsoleApp(None, "", Settings(private_config))
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: type(app.screen).__name__ == "ConnectScreen")
        screen = app.screen
        await pilot.press("a")
        assert app.focused.id == "form-name"
        await pilot.press("x", "escape")
        assert app.focused is screen.query_one("#profiles", OptionList)
        assert screen.query_one("#form-name", Input).value == "x"
        await pilot.click("#form-url")
        assert app.focused.id == "form-url"
        for field in screen.query("#connect-form Input"):
            if field.display:
                assert len(field.placeholder) < field.content_region.width, field.placeholder
        await pilot.press("escape", "8")  # the section key works again once out of the form
        await until(pilot, lambda: any("Connect to a deployment first" in n.message for n in app._notifications))
        assert screen.query_one("#form-url", Input).value == ""


async def test_filter_editor_placeholders_fit(private_config):
    app = ConsoleApp(None, "", Settings(private_config))
    async with app.run_test(size=(110, 40)) as pilot:
        await app.push_screen(FilterEditor(QuerySpec(), ["author", "body"], {}))
        await pilot.pause()
        fields = [app.screen.query_one(".clause-field", Input), app.screen.query_one(".clause-value", Input)]
        for field in fields:
            assert len(field.placeholder) < field.content_region.width, field.placeholder


# -- Help: the screen's keys and Global first, no Textual internals --------------------------------


async def test_help_lists_screen_then_global_keys(emulator):
    app = ConsoleApp(connect(emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.connection_state == "connected")
        await pilot.press("7")
        await until(pilot, lambda: isinstance(app.screen, LogsScreen))
        await pilot.press("f1")
        await until(pilot, lambda: app.screen.query("#help-table"))
        table = app.screen.query_one("#help-table")
        rows = [table.get_row_at(index) for index in range(table.row_count)]
        places = [row[0] for row in rows]
        assert places[0] == "Screen" and "Global" in places
        first_global = places.index("Global")
        assert set(places[:first_global]) == {"Screen"}
        assert "Screen" not in places[first_global:]
        assert all(row[3] for row in rows)  # every row has a binding id: nothing from Textual's internals
        assert not {"Footer", "DataTable", "Input", "Select"} & set(places)
        assert "LogView" in places and places.index("LogView") > first_global  # own widgets last
        assert "logs.pause" in [row[3] for row in rows] and "app.help" in [row[3] for row in rows]


# -- the command palette's DESIGN §6 commands ------------------------------------------------------


def unsigned_jwt(subject: str) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part({'sub': subject, 'iat': now, 'exp': now + 600})}.c2ln"


async def palette(pilot, text: str) -> None:
    await pilot.press("ctrl+p")
    await pilot.press(*text)
    await pilot.pause(0.3)
    await pilot.press("enter")


async def test_palette_runs_functions_decodes_tokens_and_cancels_jobs(emulator):
    app = ConsoleApp(connect(emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.connection_state == "connected")
        await pilot.press("2")
        await until(pilot, lambda: "posts:countAll" in app.function_paths)
        await pilot.press("1")
        await until(pilot, lambda: app.current_mode == "data")
        await palette(pilot, "Run function: posts:countAll")
        await until(pilot, lambda: app.current_mode == "functions" and app.screen.entry is not None
                    and app.screen.entry.path == "posts:countAll")

        token = unsigned_jwt("palette-user")
        app.copy_to_clipboard(token)  # no system clipboard tool in tests: the console's own is read
        await palette(pilot, "Decode token from clipboard")
        await until(pilot, lambda: app.current_mode == "auth")
        await until(pilot, lambda: app.screen.query_one("#auth-token").text.strip() == token)

        await palette(pilot, "Cancel scheduled job")
        await until(pilot, lambda: app.current_mode == "schedules")
        await until(pilot, lambda: app.screen.table.job_filter.state == "pending")
        assert app.focused is app.screen.table


# -- wording ----------------------------------------------------------------------------------------


async def test_settings_pluralizes_variables(emulator):
    from console.client import DeploymentClient

    app = ConsoleApp(connect(emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.connection_state == "connected")
        await pilot.press("8")
        await until(pilot, lambda: "variable" in text_of(app.screen, "#settings-env-state"))
        assert "(s)" not in text_of(app.screen, "#settings-env-state")
        async with DeploymentClient(connect(emulator)) as client:
            await client.update_env_vars({"ONLY_ONE": "1"})
        await pilot.press("r")
        await until(pilot, lambda: text_of(app.screen, "#settings-env-state").startswith("1 variable;"))


async def test_sections_need_a_deployment(private_config):
    app = ConsoleApp(None, "", Settings(private_config))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.current_mode == "connect")
        app.action_section("settings")  # as the 8 key does, whatever has focus
        await pilot.pause()
        assert app.current_mode == "connect"
        assert any("Connect to a deployment first" in n.message for n in app._notifications)
