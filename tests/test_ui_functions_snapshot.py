"""Snapshot of the Functions screen (pytest-textual-snapshot), deterministic: fixed size, UTC, a
manual emulator clock, the port and the duration masked.
Update with `pytest tests/test_ui_functions_snapshot.py --snapshot-update`."""

from __future__ import annotations

import dataclasses

import pytest

from console.connection import Connection
from console.emulator.clock import ManualClock
from console.sessions import Settings
from screens.app import ConsoleApp
from screens.functions import FunctionsScreen
from screens.widgets.args_editor import ArgsEditor
from screens.widgets.function_tree import FunctionTree
from screens.widgets.result_view import ResultView
from screens.widgets.status_bar import StatusBar
from ui_support import until

SIZE = (150, 40)
FIXED_NS = 1_767_225_600_000_000_000  # 2026-01-01 00:00:00 UTC


@pytest.fixture(autouse=True)
def isolated(ui_isolation):
    """Every test here runs isolated (tests/conftest.py)."""


def test_functions_screen_snapshot(snap_compare, emulator_factory, tmp_path):
    emulator = emulator_factory(seed=0, clock=ManualClock(FIXED_NS))
    connection = Connection.create(emulator.url, admin_key=emulator.admin_key, kind="emulator")
    settings = Settings(tmp_path / "config")
    settings.save_state("emulator", {"screen": "functions"})  # start on Functions
    app = ConsoleApp(connection, "built-in emulator", settings)
    app.animation_level = "none"

    async def run_before(pilot) -> None:
        await until(pilot, lambda: isinstance(app.screen, FunctionsScreen) and app.screen.spec_loaded)
        screen = app.screen
        # Only the counters module: the snapshot must not change when the demo app grows.
        screen.query_one("#fn-filter").value = "counters"
        await until(pilot, lambda: {e.module for e in screen.query_one(FunctionTree).visible_entries} == {"counters"})
        entry = next(e for e in screen.entries if e.path == "counters:increment")
        screen.select_function(entry)
        screen.query_one(FunctionTree).select_path(entry.path)
        screen.query_one(ArgsEditor).set_text("{ name: 'visits', by: 2 }")
        view = screen.query_one(ResultView)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: view.outcome is not None and view.outcome.status == "success")
        view.show(dataclasses.replace(view.outcome, elapsed=0.0042))  # mask the duration
        app.connection = dataclasses.replace(connection, url="http://127.0.0.1:3210")
        screen.query_one(StatusBar)._refresh_text()
        screen.query_one(FunctionTree).focus()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
