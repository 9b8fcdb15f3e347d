"""Snapshot of the Logs screen, deterministic: fixed size, UTC, rows' times, durations and
request ids masked. Update with `pytest tests/test_ui_logs_snapshot.py --snapshot-update`."""

from __future__ import annotations

import dataclasses

import pytest

from console.client import DeploymentClient
from console.connection import Connection
from console.emulator.clock import ManualClock
from console.sessions import Settings
from screens.app import ConsoleApp
from screens.logs import LogsScreen
from screens.widgets.log_view import LogView
from screens.widgets.status_bar import StatusBar
from ui_support import until

SIZE = (150, 32)
FIXED_S = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
FIXED_NS = int(FIXED_S) * 1_000_000_000


@pytest.fixture(autouse=True)
def isolated(ui_isolation):
    """Every test here runs isolated (tests/conftest.py)."""


def test_logs_screen_snapshot(snap_compare, emulator_factory, tmp_path):
    emulator = emulator_factory(seed=0, clock=ManualClock(FIXED_NS))  # crons never come due
    connection = Connection.create(emulator.url, admin_key=emulator.admin_key, kind="emulator")
    settings = Settings(tmp_path / "config")
    settings.save_state("emulator", {"screen": "logs"})  # start on Logs: no Data screen start-up calls
    app = ConsoleApp(connection, "built-in emulator", settings)
    app.animation_level = "none"
    wanted = ["counters:increment", "counters:get", "users:me", "emails:sendTestEmail"]

    async def run_before(pilot) -> None:
        await until(pilot, lambda: isinstance(app.screen, LogsScreen) and app.screen.query(LogView))
        screen = app.screen
        async with DeploymentClient(connection) as client:
            await client.mutation("counters:increment", {"name": "visits"})
            await client.query("counters:get", {"name": "visits"})
            await client.run_function("query", "users:me", {})
            await client.action("emails:sendTestEmail", {"to": "ann@example.com"})
        view = screen.view
        await until(pilot, lambda: set(wanted) <= {r.identifier for r in view.model.visible if r.kind == "completion"})
        # The calls were awaited one by one, so every entry (nested ones too) is in by now.
        ours = set(wanted) | {"emails:recordSent"}  # drop crons etc. that may run at any moment
        kept = [row for row in view.model.ring if row.identifier in ours]
        view.model.ring.clear()
        view.model.ring.extend(kept)
        for number, row in enumerate(view.model.ring):  # mask times, durations and ids
            row.ts = FIXED_S + number
            row.duration = 0.001 if row.duration is not None else None
            row.request_id = f"req{number}"
        view.set_filter(view.model.filter)
        app.connection = dataclasses.replace(connection, url="http://127.0.0.1:3210")
        screen.query_one(StatusBar)._refresh_text()
        screen._show_state()
        view.focus()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
