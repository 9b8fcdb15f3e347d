"""Pilot tests of the Schedules screen against a real emulator: live list, filters, cancel
(with the refresh paused while the dialog is open), re-run, crons, and a snapshot."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time

import pytest

from console.client import DeploymentClient
from console.connection import Connection
from console.emulator.clock import ManualClock
from screens.app import ConsoleApp
from screens.schedules import SchedulesScreen
from screens.widgets.job_table import JobFilter, JobTable
from screens.widgets.modals import ConfirmModal
from screens.widgets.schedule_filter import ScheduleFilterModal
from screens.widgets.status_bar import StatusBar
from ui_support import connect, until

SIZE = (160, 45)
FIXED_NS = 1_767_225_600_000_000_000  # 2026-01-01 00:00:00 UTC
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def isolated(ui_isolation):
    """Every test here runs isolated (tests/conftest.py)."""


async def seed_jobs(connection: Connection) -> dict:
    """Two users (two welcome emails), a digest in an hour, a failing webhook."""
    async with DeploymentClient(connection) as client:
        for number in (1, 2):
            await client.mutation("users:createUser", {"clerkId": f"u{number}", "email": f"u{number}@example.com",
                                                       "name": f"User {number}"})
        digest = await client.mutation("digest:scheduleDaily", {})
        webhook = await client.mutation("actions:notifyPartner", {})
        for _ in range(500):
            page = await client.scheduled_functions(num_items=100)
            kinds = {job["_id"]: job["state"]["kind"] for job in page.items}
            if len(kinds) == 4 and list(kinds.values()).count("pending") == 1 and kinds[webhook] == "failed":
                break
            await asyncio.sleep(0.02)
        return {"digest": digest, "webhook": webhook}


async def open_schedules(pilot, app) -> SchedulesScreen:
    await until(pilot, lambda: app.connection_state == "connected")
    await pilot.press("3")
    await until(pilot, lambda: isinstance(app.screen, SchedulesScreen) and app.screen.loaded)
    return app.screen


def shown_names(table: JobTable) -> list[str]:
    return [str(table.get_row_at(index)[0]) for index in range(table.row_count)]


async def select(pilot, table: JobTable, job_id: str) -> None:
    table.move_cursor(row=table.get_row_index(job_id))
    await until(pilot, lambda: table.selected_id == job_id)


async def test_jobs_listed_live_and_filtered(emulator_factory):
    emulator = emulator_factory(clock="manual")
    connection = connect(emulator)
    ids = await seed_jobs(connection)
    app = ConsoleApp(connection, "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_schedules(pilot, app)
        table = screen.query_one(JobTable)
        await until(pilot, lambda: table.row_count == 4)
        assert "live" in screen.mode_note
        assert shown_names(table)[0] == "actions:flakyWebhook"  # newest first
        await pilot.press("s")  # state: pending
        await until(pilot, lambda: table.row_count == 1)
        assert table.selected_id == ids["digest"]
        assert "(in 60m)" in str(table.get_row_at(0)[2])
        await pilot.press("s", "s", "s")  # inProgress, success, failed
        await until(pilot, lambda: table.job_filter.state == "failed" and table.row_count == 1)
        assert "Webhook https://partner.example.com" in str(table.get_row_at(0)[5])
        await pilot.press("x")
        await until(pilot, lambda: table.row_count == 4)
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, ScheduleFilterModal))
        await pilot.press(*"welcome", "enter")
        await until(pilot, lambda: table.job_filter == JobFilter(function="welcome") and table.row_count == 2)
        assert set(shown_names(table)) == {"actions:sendWelcomeEmail"}
        # A new job appears without rebuilding the rows already shown.
        first_row = table.get_row_at(0)
        async with DeploymentClient(connection) as client:
            await client.mutation("users:createUser", {"clerkId": "u3", "email": "u3@example.com"})
        await until(pilot, lambda: table.row_count == 3)
        assert table.get_row_at(1) == first_row


async def test_cancel_with_confirmation_pauses_refresh(emulator_factory):
    emulator = emulator_factory(clock="manual")
    connection = connect(emulator)
    ids = await seed_jobs(connection)
    app = ConsoleApp(connection, "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_schedules(pilot, app)
        table = screen.query_one(JobTable)
        await until(pilot, lambda: table.row_count == 4)
        await select(pilot, table, ids["digest"])
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "will not run" in app.screen.message
        async with DeploymentClient(connection) as client:  # changes while the dialog is open wait
            await client.mutation("digest:scheduleDaily", {"delayMs": 120_000.0})
            await until(pilot, lambda: screen.pending_jobs is not None)
            assert table.row_count == 4
            await pilot.click("#confirm")
            await until(pilot, lambda: table.row_count == 5)
            await until(pilot, lambda: "canceled" in str(table.get_row_at(table.get_row_index(ids["digest"]))[1]))
            jobs = {job["_id"]: job for job in (await client.scheduled_functions(num_items=10)).items}
            assert jobs[ids["digest"]]["state"] == {"kind": "canceled"}
            # Cancel on a finished job says so and changes nothing.
            await select(pilot, table, ids["webhook"])
            await pilot.press("d")
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmModal)
            # Cancel all of one function (the second digest), then check it.
            second = next(job_id for job_id, job in jobs.items() if job["state"]["kind"] == "pending")
            await select(pilot, table, second)
            await pilot.press("D")
            await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
            await pilot.click("#confirm")
            await until(pilot, lambda: "canceled" in str(table.get_row_at(table.get_row_index(second))[1]))


async def test_rerun_finished_job_as_admin(emulator_factory):
    emulator = emulator_factory(clock="manual")
    connection = connect(emulator)
    await seed_jobs(connection)
    app = ConsoleApp(connection, "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_schedules(pilot, app)
        table = screen.query_one(JobTable)
        await until(pilot, lambda: table.row_count == 4)
        welcome = next(job for job in table.docs.values()
                       if job["name"].endswith("sendWelcomeEmail") and job["args"][0]["email"] == "u1@example.com")
        await select(pilot, table, welcome["_id"])
        await pilot.press("ctrl+r")
        async with DeploymentClient(connection) as client:
            async def sent() -> int:
                return len(await client.query("emails:listSentTo", {"to": "u1@example.com"}))

            deadline = time.monotonic() + 10
            while await sent() < 2:
                assert time.monotonic() < deadline, "re-run did not send the email again"
                await asyncio.sleep(0.05)
        # The detail pane shows the job's args; enter fetches them fresh from the deployment.
        assert "u1@example.com" in str(screen.query_one("#job-detail").render())
        await pilot.press("enter")
        await until(pilot, lambda: welcome["_id"] in screen.full_args)
        assert screen.full_args[welcome["_id"]] == [{"email": "u1@example.com", "name": "User 1"}]


async def test_crons_tab(emulator_factory):
    emulator = emulator_factory(clock="manual")
    app = ConsoleApp(connect(emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_schedules(pilot, app)
        await pilot.press("C")
        crons = screen.query_one("#crons")
        await until(pilot, lambda: crons.row_count == 2 and screen.cron_runs)
        rows = {str(crons.get_row_at(i)[0]): crons.get_row_at(i) for i in range(crons.row_count)}
        assert str(rows["daily digest"][1]) == "daily at 08:00 UTC"
        assert str(rows["cleanup old emails"][1]) == "every 5 minutes"
        await until(pilot, lambda: "✔" in str(crons.get_row_at(0)[4]) or "✔" in str(crons.get_row_at(1)[4]))


def test_schedules_snapshot(snap_compare, emulator_factory):
    emulator = emulator_factory(clock=ManualClock(FIXED_NS))
    connection = connect(emulator)
    asyncio.run(seed_jobs(connection))
    app = ConsoleApp(connection, "built-in emulator", None)
    app.animation_level = "none"

    async def run_before(pilot) -> None:
        screen = await open_schedules(pilot, app)
        table = screen.query_one(JobTable)
        table.now_ms = lambda: FIXED_NS / 1e6
        await until(pilot, lambda: table.row_count == 4)
        table.rerender()
        table.move_cursor(row=1)
        await pilot.pause()
        detail = screen.query_one("#job-detail")
        detail.update(re.sub(r"id [0-9a-z]{32}", "id <job id>", str(detail.render())))
        screen.mode_note = "live"
        screen._update_bar()
        app.connection = dataclasses.replace(connection, url="http://127.0.0.1:3210")
        screen.query_one(StatusBar)._refresh_text()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


async def test_crons_arriving_while_away_are_all_kept(emulator_factory):
    """QA: 3 then 1 quickly, wait, 3, C showed "0 cron jobs": halves arriving while paused were mixed."""
    emulator = emulator_factory(clock="manual")
    app = ConsoleApp(connect(emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.connection_state == "connected")
        await pilot.press("3")
        await until(pilot, lambda: isinstance(app.screen, SchedulesScreen))
        screen = app.screen
        await pilot.press("1")
        await until(pilot, lambda: app.current_mode == "data")
        await until(pilot, lambda: len(screen.crons) == 2)  # kept even though the screen is not shown
        await pilot.press("3", "C")
        crons = screen.query_one("#crons")
        await until(pilot, lambda: crons.row_count == 2)
        assert str(screen.query_one("#crons-bar").render()).startswith("2 cron jobs")


async def test_one_job_wording_and_keep_job_button(emulator_factory):
    emulator = emulator_factory(clock="manual")
    connection = connect(emulator)
    async with DeploymentClient(connection) as client:
        digest = await client.mutation("digest:scheduleDaily", {})
    app = ConsoleApp(connection, "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_schedules(pilot, app)
        table = screen.query_one(JobTable)
        await until(pilot, lambda: table.row_count == 1)
        assert str(screen.query_one("#jobs-bar").render()).startswith("1 job ·")
        await select(pilot, table, digest)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        labels = [str(button.label) for button in app.screen.query("Button")]
        assert labels == ["Cancel job", "Keep job"]
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        assert "pending" in str(table.get_row_at(0)[1])


def make_jobs(count: int, first: int = 0, now_ms: float = FIXED_NS / 1e6) -> list[dict]:
    """`count` finished jobs, newest first (as tableData returns them), numbered from `first`."""
    return [{"_id": f"job{n:06d}", "_creationTime": now_ms + n, "name": f"mod.js:fn{n % 3}", "args": [{}],
             "scheduledTime": now_ms + n, "completedTime": now_ms + n + 5, "state": {"kind": "success"}}
            for n in reversed(range(first, first + count))]


async def test_new_jobs_rewrite_rows_in_place_and_keep_the_selection():
    from textual.app import App

    class TableApp(App):
        def compose(self):
            yield JobTable(id="jobs", now_ms=lambda: FIXED_NS / 1e6)

    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(JobTable)
        jobs = make_jobs(150)
        table.apply(jobs)
        await pilot.pause()
        assert table.row_count == 100 and table.selected_id == "job000149"
        await select(pilot, table, "job000144")
        row_keys = [row.key for row in table.ordered_rows]
        stats = table.apply(make_jobs(3, first=150) + jobs)
        await until(pilot, lambda: table.selected_id == "job000144")
        assert (stats.added, stats.updated, stats.removed) == (3, 0, 3)
        assert table.cursor_row == 8 and shown_names(table)[:3] == ["mod:fn2", "mod:fn1", "mod:fn0"]
        assert [row.key for row in table.ordered_rows] == row_keys  # rows rewritten, not rebuilt
        changed = make_jobs(3, first=150) + jobs
        changed[8] = {**changed[8], "state": {"kind": "failed", "error": "Uncaught Error: boom"}}
        stats = table.apply(changed)
        assert (stats.added, stats.updated, stats.removed) == (0, 1, 0)
        assert "failed" in str(table.get_row_at(8)[1]) and "boom" in str(table.get_row_at(8)[5])
        assert table.page_text() == "1–100 of 153"


async def test_paging_past_the_live_window_loads_older_jobs(emulator_factory, monkeypatch):
    """Only the newest JOB_LIMIT jobs are live; n and G load older ones, p goes back to live rows."""
    import screens.schedules as schedules

    monkeypatch.setattr(schedules, "JOB_LIMIT", 20)
    monkeypatch.setattr(schedules, "OLDER_BATCH", 15)  # several requests to reach the oldest
    emulator = emulator_factory(clock="manual")
    connection = connect(emulator)
    async with DeploymentClient(connection) as client:
        job_ids = [await client.mutation("digest:scheduleDaily", {"delayMs": 60_000.0 * (n + 1)})
                   for n in range(45)]
    oldest, newest = job_ids[0], job_ids[-1]
    app = ConsoleApp(connection, "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_schedules(pilot, app)
        table = screen.query_one(JobTable)
        table.page_size = 10
        await until(pilot, lambda: len(table.docs) == 20 and not screen.live_done)
        table.clear_older()  # re-pages with the smaller page size
        bar = lambda: str(screen.query_one("#jobs-bar").render())
        assert "newest 20 live" in bar() and schedules.OLDER_NOTE not in bar()
        live_ids = set(table.docs)
        await pilot.press("n")  # the second live page
        await until(pilot, lambda: table.page == 1)
        assert set(table.shown) <= live_ids and not table.older
        await pilot.press("n")  # past the live window: older jobs, fetched on demand
        await until(pilot, lambda: table.page == 2 and table.row_count == 10)
        assert table.on_older_page and not set(table.shown) & live_ids
        assert schedules.OLDER_NOTE in bar()
        await pilot.press("G")  # to the oldest job
        await until(pilot, lambda: oldest in table.shown)
        assert table.page == table.page_count - 1 == 4 and table.row_count == 5
        assert len(table.older) == 25 and screen.more_older is False
        assert table.page_text() == "41–45 of 45"
        async with DeploymentClient(connection) as client:
            await client.cancel_job(oldest)
        await pilot.press("r")  # older pages are a snapshot: r loads them again, on the same page
        await until(pilot, lambda: "canceled" in str(table.get_row_at(table.shown[oldest])[1]))
        assert table.on_older_page and table.page == 4
        # The live window still follows the deployment while older pages are shown.
        async with DeploymentClient(connection) as client:
            added = await client.mutation("digest:scheduleDaily", {"delayMs": 7_200_000.0})
        await until(pilot, lambda: added in table.docs)
        assert oldest in table.shown and table.on_older_page
        assert job_ids[25] in table.older  # pushed out of the live window: kept with the older jobs
        assert len(table.docs) + screen.older_loaded == 46
        await pilot.press("p", "p", "p")  # back into the live window
        await until(pilot, lambda: table.page == 1 and not table.on_older_page)
        assert set(table.shown) <= set(table.docs)
        assert schedules.OLDER_NOTE not in bar()
        await pilot.press("g")
        await until(pilot, lambda: table.page == 0 and table.selected_id == added)
        assert newest in table.shown
        # A filter says plainly that it covers the live window plus the older pages loaded.
        await pilot.press("s")
        await until(pilot, lambda: table.job_filter.state == "pending")
        assert "filter covers the newest 20 jobs + " in bar()
