"""The HTTP and Settings screens against a real emulator (Pilot), and their snapshots
(deterministic: fixed size, URLs and keys replaced before the final paint)."""

from __future__ import annotations

import dataclasses

import httpx
import pytest
from textual.widgets import DataTable, Input, OptionList, Select, Static, TextArea

import screens.app as app_module
from console.connection import Connection
from console.sessions import Settings
from screens.app import ConsoleApp
from screens.http import HttpScreen, parse_header_lines
from screens.settings import EnvVarModal, SettingsScreen, name_problem
from screens.widgets.modals import ConfirmModal
from screens.widgets.status_bar import StatusBar
from ui_support import text_of, until

SIZE = (160, 45)
FIXED_URL = "http://127.0.0.1:3210"
FIXED_SITE = "http://127.0.0.1:3211"


@pytest.fixture(autouse=True)
def private_config(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVEX_CONSOLE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("CONVEX_CONSOLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no .env.local from the developer's folder
    monkeypatch.setitem(app_module.SCREENS, "http", ("screens.http", "HttpScreen"))
    monkeypatch.setitem(app_module.SCREENS, "settings", ("screens.settings", "SettingsScreen"))
    return tmp_path / "config"


def connect(emulator, site_url: str | None = None) -> Connection:
    return Connection.create(emulator.url, admin_key=emulator.admin_key, kind="emulator",
                             site_url=site_url or emulator.site_url)


def make_app(connection, config_dir, screen: str) -> ConsoleApp:
    settings = Settings(config_dir)
    settings.save_state("emulator", {"screen": screen})
    app = ConsoleApp(connection, "test", settings)
    app.animation_level = "none"
    return app


def test_header_lines_parse_and_name_rules():
    assert parse_header_lines("X-A: 1\n\n# c\nContent-Type: text/plain") == [("X-A", "1"), ("Content-Type", "text/plain")]
    with pytest.raises(ValueError, match="header line 1"):
        parse_header_lines("no colon here")
    assert name_problem("GOOD_NAME") is None
    assert "invalid" in name_problem("1BAD") and "too long" in name_problem("A" * 41)


# --- HTTP screen -------------------------------------------------------------------------------


async def test_http_screen_sends_saves_and_diagnoses(emulator, private_config):
    app = make_app(connect(emulator), private_config, "http")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, HttpScreen) and app.screen.routes)
        screen = app.screen
        routes = screen.query_one("#http-routes", OptionList)
        index = next(i for i in range(routes.option_count) if routes.get_option_at_index(i).id == "POST /your-endpoint")
        routes.focus()
        routes.highlighted = index
        await pilot.press("enter")
        assert screen.query_one("#http-path", Input).value == "/your-endpoint"
        assert screen.query_one("#http-method", Select).value == "POST"
        screen.query_one("#http-body-text", TextArea).text = '{"requiredField": "ui"}'
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen.last_exchange is not None)
        assert screen.last_exchange.status == 200
        assert screen.last_exchange.header("access-control-allow-origin") == "*"
        assert '"success": true' in text_of(screen, "#http-response-body")
        assert text_of(screen, "#http-status").startswith("200 OK")

        await pilot.press("f4")  # saved per deployment, in the profile's UI state
        saved = Settings(private_config).load_state("emulator")["http"]["saved"]
        assert saved[0]["method"] == "POST" and saved[0]["target"] == "/your-endpoint"
        assert screen.query_one("#http-saved", OptionList).option_count == 1

        # A request aimed at the deployment (API) URL gets the domain diagnosis.
        screen.query_one("#http-method", Select).value = "GET"
        screen.query_one("#http-body-kind", Select).value = "none"
        screen.query_one("#http-path", Input).value = emulator.url + "/health"
        screen.last_exchange = None
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen.last_exchange is not None)
        assert screen.last_exchange.status == 404
        status = text_of(screen, "#http-status")
        assert "is the deployment (API) URL; HTTP actions are at " + emulator.site_url + "/health" in status

        # The Auth screen's token goes out as Bearer.
        app.bearer_token = "not.a.jwt"
        screen.query_one("#http-method", Select).value = "POST"
        screen.query_one("#http-path", Input).value = "/authenticated-endpoint"
        screen.last_exchange = None
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen.last_exchange is not None)
        assert ("Authorization", "Bearer not.a.jwt") in screen.last_exchange.request_headers
        assert screen.last_exchange.status == 401 and "Invalid token" in text_of(screen, "#http-response-body")


async def test_http_screen_reports_an_unreachable_site(emulator, private_config):
    app = make_app(connect(emulator, site_url="http://127.0.0.1:9"), private_config, "http")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, HttpScreen) and app.screen.routes)
        screen = app.screen
        screen.query_one("#http-path", Input).value = "/health"
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen.last_error)
        assert "connection refused" in text_of(screen, "#http-status")
        assert screen.sending is False


async def test_http_screen_audit_marks_the_two_planted_routes(emulator, private_config):
    app = make_app(connect(emulator), private_config, "http")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, HttpScreen) and app.screen.routes)
        screen = app.screen
        await pilot.press("f3")
        await until(pilot, lambda: screen.report is not None)
        table = screen.query_one("#http-audit-table", DataTable)
        assert table.row_count == 7
        blocked = [table.get_row_at(i)[0] for i in range(table.row_count) if str(table.get_row_at(i)[1]) == "BLOCKED"]
        assert blocked == ["POST /legacy/echo", "POST /messages"]
        assert "Add an OPTIONS route for /legacy/echo" in text_of(screen, "#http-audit-detail")


def test_http_screen_snapshot(snap_compare, emulator_factory, private_config):
    emulator = emulator_factory(seed=0)
    app = make_app(connect(emulator), private_config, "http")

    async def run_before(pilot) -> None:
        await until(pilot, lambda: isinstance(app.screen, HttpScreen) and app.screen.routes)
        screen = app.screen
        await pilot.press("f3")
        await until(pilot, lambda: screen.report is not None and app.connection_state == "connected")
        app.connection = dataclasses.replace(app.connection, url=FIXED_URL, site_url=FIXED_SITE)
        screen.query_one(StatusBar)._refresh_text()
        screen._show_top()
        screen.query_one("#http-audit-table", DataTable).focus()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


# --- Settings screen ------------------------------------------------------------------------------


async def test_settings_env_vars_add_reveal_edit_remove(emulator, private_config):
    app = make_app(connect(emulator), private_config, "settings")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen) and app.screen.version)
        screen = app.screen
        assert "convex-console" in text_of(screen, "#settings-info") and emulator.site_url in text_of(screen, "#settings-info")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, EnvVarModal))
        modal = app.screen
        modal.query_one("#env-name", Input).value = "1BAD"
        modal.query_one("#env-value", Input).value = "s3cret-value"
        await pilot.click("#env-save")
        await pilot.pause()
        assert "invalid" in str(modal.query_one("#env-problem", Static).render())
        modal.query_one("#env-name", Input).value = "API_KEY"
        modal.query_one("#env-value", Input).focus()
        await pilot.press("enter")  # a second click this soon would be a double click
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.click("#confirm")
        await until(pilot, lambda: app.screen is screen and "API_KEY" in screen.variables)
        listed = httpx.get(emulator.url + "/api/list_environment_variables",
                           headers={"Authorization": f"Convex {emulator.admin_key}"}).json()
        assert listed == {"environmentVariables": {"API_KEY": "s3cret-value"}}
        table = screen.query_one("#settings-env", DataTable)
        assert table.get_row_at(0)[1] == "••••••••"
        table.focus()
        await pilot.press("v")
        assert table.get_row_at(0)[1] == "s3cret-value"
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EnvVarModal))
        app.screen.query_one("#env-value", Input).value = "changed"
        await pilot.click("#env-save")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.click("#confirm")
        await until(pilot, lambda: screen.variables.get("API_KEY") == "changed")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.click("#cancel")  # declined: nothing changes
        await pilot.pause()
        assert "API_KEY" in screen.variables
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.click("#confirm")
        await until(pilot, lambda: not screen.variables)


def test_settings_screen_snapshot(snap_compare, emulator_factory, private_config):
    emulator = emulator_factory(seed=0)
    httpx.post(emulator.url + "/api/update_environment_variables", headers={"Authorization": f"Convex {emulator.admin_key}"},
               json={"changes": [{"name": "API_KEY", "value": "s3cret"}, {"name": "CLERK_JWT_ISSUER_DOMAIN",
                                                                           "value": "https://clerk.example.com"}]})
    app = make_app(connect(emulator), private_config, "settings")

    async def run_before(pilot) -> None:
        await until(pilot, lambda: isinstance(app.screen, SettingsScreen) and app.screen.version and app.screen.variables
                    and app.connection_state == "connected")
        screen = app.screen
        screen.revealed = {"CLERK_JWT_ISSUER_DOMAIN"}  # one of the two revealed
        screen._show_env()
        screen.query_one("#settings-env", DataTable).move_cursor(row=1)
        app.connection = Connection.create(FIXED_URL, admin_key="convex-console|" + "0" * 60, kind="emulator",
                                           site_url=FIXED_SITE)
        screen.query_one(StatusBar)._refresh_text()
        screen._show_info()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
