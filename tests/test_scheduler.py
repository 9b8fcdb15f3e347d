"""The emulator's scheduler over real sockets: atomic scheduling, exactly-once mutations,
at-most-once actions, failures, cancel semantics, limits, restart recovery, manual clock, crons."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

PEERS = Path(__file__).parent / "peers"
sys.path.insert(0, str(PEERS))

from console.emulator import scheduler  # noqa: E402
from console.emulator.server import bind_socket  # noqa: E402

pytestmark = pytest.mark.timeout(60)
APP = "scheduler_app"
HOUR_MS = 3600 * 1000.0


class Api:
    """A small admin HTTP client for one emulator."""

    def __init__(self, url: str, admin_key: str):
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Convex {admin_key}"}, timeout=30)

    def call(self, kind: str, path: str, args: dict | None = None) -> dict:
        body = {"path": path, "args": args or {}, "format": "json"}
        return self.http.post(f"/api/{kind}", json=body).json()

    def ok(self, kind: str, path: str, args: dict | None = None):
        result = self.call(kind, path, args)
        assert result["status"] == "success", result
        return result["value"]

    def jobs(self) -> list[dict]:
        page = self.ok("query", "_system/cli/tableData", {
            "table": "_scheduled_functions", "order": "desc", "paginationOpts": {"numItems": 2000.0, "cursor": None},
        })
        return page["page"]

    def job(self, job_id: str) -> dict | None:
        return self.ok("query", "jobs:getJob", {"jobId": job_id})

    def post(self, path: str, body: dict) -> httpx.Response:
        return self.http.post(path, json=body)

    def advance(self, ms: float) -> float:
        response = self.post("/api/emulator/advance_clock", {"ms": ms})
        assert response.status_code == 200, response.text
        return response.json()["now"]


def wait_for(condition, timeout: float = 15.0, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.02)


def state_of(api: Api, job_id: str) -> str | None:
    job = api.job(job_id)
    return None if job is None else job["state"]["kind"]


def wait_state(api: Api, job_id: str, *kinds: str) -> dict:
    wait_for(lambda: state_of(api, job_id) in kinds, message=f"job {job_id} in {kinds}")
    return api.job(job_id)


@pytest.fixture
def manual(emulator_factory):
    em = emulator_factory(app=APP, clock="manual")
    return em, Api(em.url, em.admin_key)


@pytest.fixture
def wall(emulator_factory):
    em = emulator_factory(app=APP)
    return em, Api(em.url, em.admin_key)


# --- scheduling ---------------------------------------------------------------------------


def test_rolled_back_mutation_schedules_nothing(wall):
    em, api = wall
    result = api.call("mutation", "jobs:scheduleThenFail", {"name": "rollback"})
    assert result["status"] == "error" and "rolled back on purpose" in result["errorMessage"]
    assert api.jobs() == []
    assert api.ok("query", "jobs:runs", {"name": "rollback"}) == 0


def test_job_document_shape_and_manual_clock(manual):
    em, api = manual
    now = em.deployment.clock.now_ms()
    job_id = api.ok("mutation", "jobs:scheduleIncrement", {"delayMs": HOUR_MS, "name": "later"})
    job = api.job(job_id)
    assert set(job) == {"_id", "_creationTime", "name", "args", "scheduledTime", "state"}
    assert job["name"] == "jobs.js:increment" and job["args"] == [{"name": "later"}]
    assert job["state"] == {"kind": "pending"} and job["scheduledTime"] == pytest.approx(now + HOUR_MS, abs=5)
    api.advance(HOUR_MS - 1000)
    assert state_of(api, job_id) == "pending"
    api.advance(1000)
    done = wait_state(api, job_id, "success")
    assert done["completedTime"] >= done["scheduledTime"]
    assert api.ok("query", "jobs:runs", {"name": "later"}) == 1


def test_advance_clock_refused_on_wall_clock(wall):
    em, api = wall
    response = api.post("/api/emulator/advance_clock", {"ms": 1000})
    assert response.status_code == 400 and response.json()["code"] == "ClockNotManual"
    assert Api(em.url, "convex-console|bad").post("/api/emulator/advance_clock", {"ms": 1}).status_code in (401, 403)


def test_mutation_jobs_run_exactly_once_under_conflicts(wall):
    em, api = wall
    jobs = [api.ok("mutation", "jobs:scheduleIncrement", {"delayMs": 0.0, "name": "hot"}) for _ in range(20)]
    errors = []

    def hammer():
        client = Api(em.url, em.admin_key)
        for _ in range(40):
            result = client.call("mutation", "jobs:bump", {"name": "hot"})
            if result["status"] != "success":
                errors.append(result)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for job_id in jobs:
        wait_state(api, job_id, "success", "failed")
    assert errors == []
    assert {state_of(api, job_id) for job_id in jobs} == {"success"}
    assert api.ok("query", "jobs:runs", {"name": "hot"}) == 20
    assert api.ok("query", "jobs:value", {"name": "hot"}) == 20 + 4 * 40


def test_action_job_goes_through_in_progress_once(wall):
    em, api = wall
    from scheduler_app.jobs import gate, started

    job_id = api.ok("mutation", "jobs:scheduleSlowAction", {"key": "once"})
    wait_for(lambda: started("once").is_set(), message="action start")
    assert state_of(api, job_id) == "inProgress"
    gate("once").set()
    done = wait_state(api, job_id, "success")
    assert "completedTime" in done
    assert api.ok("query", "jobs:runs", {"name": "once"}) == 1


def test_at_most_eight_jobs_run_at_once(wall):
    em, api = wall
    from scheduler_app.jobs import gate, started

    keys = [f"par{i}" for i in range(12)]
    ids = [api.ok("mutation", "jobs:scheduleSlowAction", {"key": key}) for key in keys]
    try:
        wait_for(lambda: sum(started(key).is_set() for key in keys) == scheduler.PARALLELISM, message="8 running")
        kinds = [state_of(api, job_id) for job_id in ids]
        assert kinds.count("inProgress") == scheduler.PARALLELISM and kinds.count("pending") == 4
        assert sum(started(key).is_set() for key in keys) == scheduler.PARALLELISM
    finally:
        for key in keys:
            gate(key).set()
    for job_id in ids:
        wait_state(api, job_id, "success")


def test_failures_are_recorded_with_the_message(wall):
    em, api = wall
    action_id, mutation_id = api.ok("mutation", "jobs:scheduleFailures")
    failed_action = wait_state(api, action_id, "failed")
    failed_mutation = wait_state(api, mutation_id, "failed")
    assert failed_action["state"]["error"].startswith("Uncaught Error: the action broke")
    assert failed_mutation["state"]["error"].startswith("Uncaught Error: the mutation broke")
    assert api.ok("query", "jobs:runs", {"name": "failing"}) == 0  # the failed mutation rolled back


def test_invalid_args_fail_the_job_with_validation_error(wall):
    em, api = wall
    job_id = api.ok("mutation", "jobs:scheduleBadArgs")
    failed = wait_state(api, job_id, "failed")
    assert "ArgumentValidationError" in failed["state"]["error"]


def test_scheduling_from_an_action_commits_at_once(wall):
    em, api = wall
    result = api.call("action", "jobs:scheduleFromActionThenFail", {"name": "from-action"})
    assert result["status"] == "error"
    wait_for(lambda: api.ok("query", "jobs:runs", {"name": "from-action"}) == 1, message="job from action")


def test_scheduled_functions_run_without_auth(wall):
    em, api = wall
    import base64
    import json

    acting = base64.b64encode(json.dumps({"subject": "user-1", "issuer": "https://convex.test"}).encode()).decode()
    as_user = httpx.Client(base_url=em.url, headers={"Authorization": f"Convex {em.admin_key}:{acting}"})
    scheduled = as_user.post("/api/mutation", json={"path": "jobs:scheduleIdentityCheck", "args": {}}).json()
    assert scheduled["status"] == "success", scheduled
    wait_state(api, scheduled["value"], "success")
    assert api.ok("query", "jobs:identities") == [False]


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_pending_job_never_runs(manual):
    em, api = manual
    job_id = api.ok("mutation", "jobs:scheduleIncrement", {"delayMs": 60_000.0, "name": "c1"})
    response = api.post("/api/cancel_job", {"id": job_id, "componentId": None})
    assert response.status_code == 200 and response.content == b""
    job = api.job(job_id)
    assert job["state"] == {"kind": "canceled"} and "completedTime" in job
    api.advance(120_000)
    other = api.ok("mutation", "jobs:scheduleIncrement", {"delayMs": 0.0, "name": "c2"})
    wait_state(api, other, "success")
    assert state_of(api, job_id) == "canceled"
    assert api.ok("query", "jobs:runs", {"name": "c1"}) == 0


def test_cancel_from_a_mutation_and_of_a_finished_job_is_a_no_op(manual):
    em, api = manual
    pending = api.ok("mutation", "jobs:scheduleIncrement", {"delayMs": 60_000.0, "name": "m"})
    api.ok("mutation", "jobs:cancelJob", {"jobId": pending})
    assert state_of(api, pending) == "canceled"
    done = api.ok("mutation", "jobs:scheduleIncrement", {"delayMs": 0.0, "name": "done"})
    before = wait_state(api, done, "success")
    assert api.post("/api/cancel_job", {"id": done}).status_code == 200
    api.ok("mutation", "jobs:cancelJob", {"jobId": done})
    assert api.job(done) == before


def test_cancel_running_action_lets_it_finish_and_cancels_what_it_schedules(wall):
    em, api = wall
    from scheduler_app.jobs import gate, started

    job_id = api.ok("mutation", "jobs:scheduleSlowAction", {"key": "running"})
    wait_for(lambda: started("running").is_set(), message="action start")
    assert api.post("/api/cancel_job", {"id": job_id}).status_code == 200
    assert state_of(api, job_id) == "canceled"
    gate("running").set()
    wait_for(lambda: api.ok("query", "jobs:runs", {"name": "running"}) == 1, message="action end")
    followups = wait_for(lambda: [j for j in api.jobs() if j["args"] == [{"name": "running-followup"}]])
    assert followups[0]["state"] == {"kind": "canceled"}
    assert state_of(api, job_id) == "canceled"  # completing a canceled job is a no-op
    assert api.ok("query", "jobs:runs", {"name": "running-followup"}) == 0


def test_cancel_all_per_function_then_all(manual):
    em, api = manual
    increments = [api.ok("mutation", "jobs:scheduleIncrement", {"delayMs": 60_000.0, "name": f"a{i}"}) for i in range(3)]
    slow = api.ok("mutation", "jobs:scheduleSlowAction", {"key": "later", "delayMs": 60_000.0})
    response = api.post("/api/cancel_all_jobs", {"udfPath": "jobs:increment", "componentId": None})
    assert response.status_code == 200
    assert {state_of(api, j) for j in increments} == {"canceled"}
    assert state_of(api, slow) == "pending"
    assert api.post("/api/cancel_all_jobs", {}).status_code == 200
    assert state_of(api, slow) == "canceled"


def test_cancel_all_in_a_time_range(manual):
    em, api = manual
    soon = api.ok("mutation", "jobs:scheduleIncrement", {"delayMs": 10_000.0, "name": "soon"})
    later = api.ok("mutation", "jobs:scheduleIncrement", {"delayMs": HOUR_MS, "name": "later"})
    end_ns = int(api.job(soon)["scheduledTime"] * 1_000_000) + 1_000_000
    assert api.post("/api/cancel_all_jobs", {"endNextTs": end_ns}).status_code == 200
    assert state_of(api, soon) == "canceled" and state_of(api, later) == "pending"


def test_delete_scheduled_functions_table(manual):
    em, api = manual
    for i in range(3):
        api.ok("mutation", "jobs:scheduleIncrement", {"delayMs": 60_000.0, "name": f"d{i}"})
    assert len(api.jobs()) == 3
    assert api.post("/api/delete_scheduled_functions_table", {"componentId": None}).status_code == 200
    assert api.jobs() == []


# --- limits and misuse -----------------------------------------------------------------------


def test_limits_and_errors(manual):
    em, api = manual
    assert api.ok("mutation", "jobs:scheduleMany", {"n": 1000.0}) == 1000
    too_many = api.call("mutation", "jobs:scheduleMany", {"n": 1001.0})
    assert "Too many functions scheduled by this mutation (limit: 1000)" in too_many["errorMessage"]
    from_action = api.call("action", "jobs:scheduleManyFromAction", {"n": 1001.0})
    assert "Too many functions scheduled by this mutation (limit: 1000)" in from_action["errorMessage"]
    far = api.call("mutation", "jobs:scheduleFarFuture")
    assert "is more than 5 years in the future" in far["errorMessage"]
    missing = api.call("mutation", "jobs:scheduleMissingModule")
    assert "Attempted to schedule function at nonexistent path: nowhere.js" in missing["errorMessage"]
    assert api.call("mutation", "jobs:scheduleMissing")["status"] == "error"
    from_query = api.call("query", "jobs:scheduleFromQuery")
    assert from_query["status"] == "error" and "scheduler" in from_query["errorMessage"]
    assert len(api.jobs()) == 1000 + 1000  # the 1,000 from the mutation, 1,000 from the action


def test_run_action_from_a_mutation_points_to_the_scheduler(wall):
    em, api = wall
    result = api.call("mutation", "jobs:callActionDirectly")
    assert result["status"] == "error"
    assert "ctx.scheduler.run_after(0, ...)" in result["errorMessage"]


# --- admin queries -------------------------------------------------------------------------


def test_paginated_scheduled_jobs_and_args(manual):
    em, api = manual
    first = api.ok("mutation", "jobs:scheduleIncrement", {"delayMs": 60_000.0, "name": "p1"})
    second = api.ok("mutation", "jobs:scheduleSlowAction", {"key": "p2", "delayMs": 30_000.0})
    done = api.ok("mutation", "jobs:scheduleIncrement", {"delayMs": 0.0, "name": "p3"})
    wait_state(api, done, "success")
    result = api.call("query", "_system/frontend/paginatedScheduledJobs", {
        "paginationOpts": {"numItems": 10.0, "cursor": None}}) | {}
    page = result["value"]["page"]
    assert [job["_id"] for job in page] == [second, first]  # pending only, by next time
    assert page[1]["udfPath"] == "jobs.js:increment" and page[1]["state"] == {"type": "pending"}
    assert set(page[1]) >= {"_id", "_creationTime", "udfPath", "udfArgs", "argsId", "state", "nextTs"}
    only = api.ok("query", "_system/frontend/paginatedScheduledJobs", {
        "paginationOpts": {"numItems": 10.0, "cursor": None}, "udfPath": "jobs:increment"})
    assert [job["_id"] for job in only["page"]] == [first]
    encoded = api.http.post("/api/query", json={
        "path": "_system/frontend/scheduler:getArgs", "args": {"argsId": first}, "format": "convex_encoded_json",
    }).json()["value"]
    import base64
    import json

    assert json.loads(base64.b64decode(encoded["args"]["$bytes"])) == [{"name": "p1"}]


# --- garbage collection and busy-looping ---------------------------------------------------------


def test_completed_jobs_are_kept_seven_days(manual):
    em, api = manual
    job_id = api.ok("mutation", "jobs:scheduleIncrement", {"delayMs": 0.0, "name": "gc"})
    wait_state(api, job_id, "success")
    api.advance(6 * 24 * HOUR_MS)
    assert state_of(api, job_id) == "success"
    api.advance(24 * HOUR_MS + 1000)
    wait_for(lambda: api.job(job_id) is None, message="garbage collection")


def test_idle_executor_does_not_spin(manual):
    em, api = manual
    api.ok("mutation", "jobs:scheduleIncrement", {"delayMs": HOUR_MS, "name": "idle"})
    executor = em.deployment.extras["scheduler_executor"]
    before = executor.wakeups
    time.sleep(0.5)  # nothing happens: the count must not move
    assert executor.wakeups - before <= 1


# --- crons ------------------------------------------------------------------------------------


def test_crons_run_on_schedule_and_are_listed(manual):
    em, api = manual
    jobs = wait_for(lambda: [j for j in api.ok("query", "_system/frontend/listCronJobs") if j["lastRun"]]
                    and api.ok("query", "_system/frontend/listCronJobs"))
    by_name = {job["name"]: job for job in jobs}
    assert set(by_name) == {"tick", "top of the hour"}
    tick = by_name["tick"]
    assert tick["cronSpec"]["udfPath"] == "jobs.js:increment"
    assert tick["cronSpec"]["cronSchedule"] == {"type": "interval", "seconds": "30"}  # int64 in clean JSON
    assert tick["lastRun"]["status"]["type"] == "success" and tick["lastRun"]["name"] == "tick"
    hourly_next = int(by_name["top of the hour"]["nextRun"]["nextTs"])
    assert hourly_next % (3600 * 10**9) == 0
    assert api.ok("query", "jobs:runs", {"name": "tick"}) == 1
    api.advance(30_000)
    wait_for(lambda: api.ok("query", "jobs:runs", {"name": "tick"}) == 2, message="second tick")
    runs = api.ok("query", "_system/frontend/listCronJobRuns")
    assert [run["name"] for run in runs].count("tick") == 2
    assert set(runs[0]) >= {"name", "ts", "udfPath", "udfArgs", "status", "logLines", "executionTime"}


def test_cron_expressions():
    import datetime

    from console.emulator.crons import CronError, CronExpression, Crons, next_run_ns, stored_schedule

    at = datetime.datetime(2026, 1, 31, 23, 59, tzinfo=datetime.timezone.utc)
    assert CronExpression("*/15 * * * *").next_after(at) == at.replace(month=2, day=1, hour=0, minute=0)
    assert CronExpression("0 9 * * mon").next_after(at).isoweekday() == 1
    assert CronExpression("0 0 29 2 *").next_after(at).year == 2028
    crons = Crons()
    crons.weekly("w", {"dayOfWeek": "monday", "hourUTC": 8}, "jobs:increment", {"name": "w"})
    with pytest.raises(CronError):
        crons.weekly("w", {"dayOfWeek": "monday", "hourUTC": 8}, "jobs:increment")
    with pytest.raises(CronError):
        crons.cron("bad", "61 * * * *", "jobs:increment")
    assert crons.crons["w"] == {"name": "jobs:increment", "args": [{"name": "w"}],
                                "schedule": {"type": "weekly", "dayOfWeek": "monday", "hourUTC": 8}}
    stored = stored_schedule(crons.crons["w"]["schedule"])
    assert stored == {"type": "weekly", "minuteUTC": 0, "hourUTC": 8, "dayOfWeek": 1}
    now_ns = int(at.timestamp()) * 10**9
    assert next_run_ns({"type": "interval", "seconds": 60}, None, now_ns) == now_ns
    assert next_run_ns({"type": "interval", "seconds": 60}, now_ns, now_ns) == now_ns + 60 * 10**9


# --- restart recovery (a real process killed with SIGKILL) ------------------------------------------


def _spawn(data_dir: Path, port: int, site_port: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PEERS), str(Path(__file__).parent.parent)]))
    return subprocess.Popen(
        [sys.executable, "-m", "console.cli", "emulator", "--app", APP, "--data-dir", str(data_dir),
         "--port", str(port), "--site-port", str(site_port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def _free_port() -> int:
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    return port


def _wait_up(url: str) -> None:
    def up():
        try:
            return httpx.get(url + "/version", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=30, message="emulator process")


def test_restart_recovery_after_kill_9(tmp_path):
    port, site_port = _free_port(), _free_port()
    url = f"http://127.0.0.1:{port}"
    process = _spawn(tmp_path, port, site_port)
    try:
        _wait_up(url)
        api = Api(url, (tmp_path / "admin_key").read_text().strip())
        due = api.ok("mutation", "jobs:scheduleIncrement", {"delayMs": 1500.0, "name": "restart"})
        sleepy = api.ok("mutation", "jobs:scheduleSleepy", {"seconds": 30.0})
        wait_state(api, sleepy, "inProgress")
        scheduled_time = api.job(due)["scheduledTime"]
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        wait_for(lambda: time.time() * 1000 > scheduled_time + 200, message="due time passes while stopped")
        process = _spawn(tmp_path, port, site_port)
        _wait_up(url)
        assert wait_state(api, due, "success")
        assert api.ok("query", "jobs:runs", {"name": "restart"}) == 1
        failed = wait_state(api, sleepy, "failed")
        assert failed["state"]["error"] == scheduler.TRANSIENT_ACTION_ERROR
    finally:
        process.kill()
        process.wait(10)
