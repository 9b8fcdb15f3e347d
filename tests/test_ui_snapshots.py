"""Snapshot tests (pytest-textual-snapshot) of the connect and data screens.

Deterministic: fixed terminal size, a manual emulator clock at a fixed instant, TZ=UTC,
documents inserted by the test, and the random parts (document ids, the emulator's port)
masked before the screenshot. Update with `pytest tests/test_ui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from console.client import DeploymentClient
from console.connection import Connection
from console.emulator.clock import ManualClock
from console.sessions import Profile, Settings
from screens.app import ConsoleApp
from screens.widgets.document_detail import DocumentDetail
from screens.widgets.document_grid import DocumentGrid
from screens.widgets.status_bar import StatusBar
from ui_support import until

SIZE = (140, 32)
FIXED_NS = 1_767_225_600_000_000_000  # 2026-01-01 00:00:00 UTC


@pytest.fixture(autouse=True)
def isolated(ui_isolation):
    """Every test here runs isolated (tests/conftest.py)."""


def test_data_screen_snapshot(snap_compare, emulator_factory):
    emulator = emulator_factory(seed=0, clock=ManualClock(FIXED_NS))
    connection = Connection.create(emulator.url, admin_key=emulator.admin_key, kind="emulator")

    async def seed() -> None:
        async with DeploymentClient(connection) as client:
            documents = [{"name": name, "value": float(value)} for name, value in
                         (("visits", 1200), ("signups", 87), ("errors", 3))]
            for document in documents:  # one by one: distinct creation times
                await client.add_documents("counters", [document])

    asyncio.run(seed())
    app = ConsoleApp(connection, "built-in emulator", None)
    app.animation_level = "none"  # the tab underline slides in otherwise

    async def run_before(pilot) -> None:
        await until(pilot, lambda: getattr(app.screen, "table", None) is not None and not app.screen.page_loading)
        app.screen.open_table("counters")
        await until(pilot, lambda: app.screen.table == "counters" and not app.screen.page_loading
                     and app.screen.query_one(DocumentGrid).row_count == 3
                     and app.screen.live_state == "live")  # the status bar says "live" once subscribed
        grid = app.screen.query_one(DocumentGrid)
        detail = app.screen.query_one(DocumentDetail)
        grid.move_cursor(row=0)
        await pilot.pause()
        await until(pilot, lambda: detail.doc is not None and detail.doc["_id"] == grid.current_id == list(grid.docs)[0])
        await pilot.pause()
        masks = {doc_id: f"<id {number}>" for number, doc_id in enumerate(grid.docs, 1)}
        for doc_id, mask in masks.items():
            grid.update_cell(doc_id, "_id", mask)
        detail.show(detail.table, {**detail.doc, "_id": masks[detail.doc["_id"]]})
        app.connection = dataclasses.replace(connection, url="http://127.0.0.1:3210")
        app.screen.query_one(StatusBar)._refresh_text()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_connect_screen_snapshot(snap_compare, tmp_path):
    settings = Settings(tmp_path / "config")
    settings.save_profile(Profile("staging", "https://happy-otter-123.convex.cloud", admin_key_env="STAGING_KEY"))
    settings.save_profile(Profile("local", "http://127.0.0.1:3210"), secret="local-demo|0123456789abcdef01234567")
    settings.set_default("staging")
    (tmp_path / ".env.local").write_text("CONVEX_URL=http://127.0.0.1:3210\nCONVEX_SELF_HOSTED_URL=http://10.0.0.5:3210\n")
    app = ConsoleApp(None, "", settings)
    app.animation_level = "none"

    async def run_before(pilot) -> None:
        await until(pilot, lambda: type(app.screen).__name__ == "ConnectScreen" and app.screen.discovered)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
