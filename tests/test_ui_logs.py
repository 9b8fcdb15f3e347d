"""The Logs screen against a real emulator, and its log model (ring buffer, diffed appends)."""

from __future__ import annotations


import pytest

from console.client import DeploymentClient
from console.sessions import Settings
from screens.app import ConsoleApp
from screens.logs import LogsScreen, RequestDetail
from screens.widgets.log_view import LogFilter, LogModel, LogView, RowMaker
from ui_support import connect, until

SIZE = (160, 45)


@pytest.fixture(autouse=True)
def private_config(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVEX_CONSOLE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("CONVEX_CONSOLE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "config"


def make_app(emulator, config_dir) -> ConsoleApp:
    """An app that starts on the Logs screen (its last screen), skipping the Data screen."""
    settings = Settings(config_dir)
    settings.save_state("emulator", {"screen": "logs"})
    return ConsoleApp(connect(emulator), "test", settings)


def identifiers(view: LogView) -> list[str]:
    return [row.identifier for row in view.model.visible]


# ---------------------------------------------------------------------------
# The model, headless


def entry(identifier: str, request_id: str, *, lines=(), error=None, kind="Completion", ts=1_700_000_000.0):
    return {"kind": kind, "udfType": "Query", "identifier": identifier, "requestId": request_id, "executionId": "e",
            "timestamp": ts, "logLines": list(lines), "error": error, "executionTime": 0.002}


def test_row_maker_reads_string_and_structured_lines():
    rows = RowMaker().rows([
        entry("posts:list", "r1", lines=["[INFO] hello", {"level": "WARN", "messages": ["'a'", "1"], "timestamp": 1_700_000_000_500}]),
        entry("posts:get", "r2", error="Uncaught Error: boom\n  at x"),
        entry("actions:send", "r3", lines=["[LOG] progress"], kind="Progress"),
    ])
    assert [(r.kind, r.level, r.status, r.text) for r in rows] == [
        ("line", "INFO", "success", "hello"),
        ("line", "WARN", "success", "'a' 1"),
        ("completion", "", "success", "success"),
        ("completion", "ERROR", "failure", "Uncaught Error: boom"),
        ("line", "LOG", "", "progress"),
    ]
    assert rows[1].ts == pytest.approx(1_700_000_000.5)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]


def test_model_is_a_bounded_ring_with_diffed_appends():
    model = LogModel(capacity=10)
    maker = RowMaker()
    added, dropped = model.add(maker.rows([entry(f"m:f{i}", f"r{i}") for i in range(6)]))
    assert (added, dropped) == (6, 0)
    added, dropped = model.add(maker.rows([entry(f"m:f{i}", f"r{i}") for i in range(6, 12)]))
    assert (added, dropped) == (6, 2) and len(model.ring) == 10 == len(model.visible)
    assert model.visible[0].identifier == "m:f2" and model.total == 12
    model.set_filter(LogFilter(function="f1"))
    assert [r.identifier for r in model.visible] == ["m:f10", "m:f11"]
    # With a filter, rows dropped from the ring leave the view too.
    added, dropped = model.add(maker.rows([entry("other:x", f"s{i}") for i in range(9)]))
    assert added == 0 and dropped == 1 and [r.identifier for r in model.visible] == ["m:f11"]


def test_filters_by_status_level_text_and_system():
    model = LogModel()
    model.add(RowMaker().rows([
        entry("posts:list", "r1", lines=["[INFO] listing", "[ERROR] oops"]),
        entry("posts:get", "r2", error="boom"),
        entry("_system/frontend/tableSize", "r3"),
    ]))
    assert {r.identifier for r in model.visible} == {"posts:list", "posts:get"}  # _system hidden by default
    model.set_filter(LogFilter(status="failure"))
    assert [(r.identifier, r.kind) for r in model.visible] == [("posts:get", "completion")]
    model.set_filter(LogFilter(level="ERROR"))
    assert [r.text for r in model.visible] == ["oops", "boom"]
    model.set_filter(LogFilter(text="LISTING"))
    assert [r.text for r in model.visible] == ["listing"]
    model.set_filter(LogFilter(text="r2"))  # a request id
    assert [r.request_id for r in model.visible] == ["r2"]
    model.set_filter(LogFilter(system=True))
    assert len(model.visible) == 5
    assert [r.text for r in model.request_rows("r1")] == ["listing", "oops", "success"]


# ---------------------------------------------------------------------------
# The screen, live


async def open_logs(pilot, app) -> LogsScreen:
    if app.current_mode != "logs":
        app.switch_section("logs")
    await until(pilot, lambda: isinstance(app.screen, LogsScreen) and app.screen.query(LogView) and app.screen.batches >= 0)
    return app.screen


async def test_live_tail_filters_pause_and_drill_down(emulator, private_config):
    connection = connect(emulator)
    app = make_app(emulator, private_config)
    async with app.run_test(size=SIZE) as pilot, DeploymentClient(connection) as client:
        screen = await open_logs(pilot, app)
        view = screen.view
        await client.query("posts:list", {"limit": 1.0})
        await client.run_function("query", "users:me", {})  # throws Unauthorized
        await client.action("emails:sendTestEmail", {"to": "ann@example.com"})  # logs an INFO line
        await until(pilot, lambda: {"posts:list", "users:me", "emails:sendTestEmail"} <= set(identifiers(view)))
        assert not any(name.startswith("_system/") for name in identifiers(view))
        # Status filter.
        screen.query_one("#logs-status").value = "failure"
        await until(pilot, lambda: identifiers(view) and set(identifiers(view)) == {"users:me"})
        assert "Unauthorized" in view.model.visible[0].text
        # Level filter + function filter.
        screen.action_clear_filters()
        screen.query_one("#logs-level").value = "INFO"
        screen.query_one("#logs-function").value = "emails"
        await until(pilot, lambda: [r.text for r in view.model.visible][:1] == ["Sending email to ann@example.com: Test email"]
                    or any("ann@example.com" in r.text for r in view.model.visible))
        assert all(r.level == "INFO" and "emails" in r.identifier for r in view.model.visible)
        # Free text.
        screen.action_clear_filters()
        screen.query_one("#logs-text").value = "ann@example"
        await until(pilot, lambda: view.model.visible and all("ann@example" in r.haystack() for r in view.model.visible))
        # Drill-down: every row of that request.
        view.focus()
        view.action_last()
        request_id = view.current.request_id
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RequestDetail))
        detail = app.screen
        assert detail.request_id == request_id
        kinds = [(r.identifier, r.kind) for r in detail.rows]
        assert ("emails:sendTestEmail", "completion") in kinds and ("emails:sendTestEmail", "line") in kinds
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        # Pause: new calls wait; resume appends them.
        screen.action_clear_filters()
        await pilot.pause()
        await pilot.press("space")
        assert screen.paused
        shown = len(view.model.visible)
        await client.query("counters:get", {"name": "paused"})
        await until(pilot, lambda: any(r.identifier == "counters:get" for r in screen.pending))
        assert len(view.model.visible) == shown
        assert "paused" in str(screen.query_one("#logs-state").render())
        await pilot.press("space")
        assert not screen.paused and not screen.pending
        assert "counters:get" in identifiers(view)


async def test_tail_survives_the_server_going_away(emulator_factory, private_config):
    emulator = emulator_factory(seed=0)
    app = make_app(emulator, private_config)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_logs(pilot, app)
        emulator.stop()
        await until(pilot, lambda: "retrying" in screen.problem, timeout=15)
        assert "retrying" in str(screen.query_one("#logs-state").render())
        await pilot.press("space")  # still responsive
        assert screen.paused
