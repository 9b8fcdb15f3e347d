"""Admin HTTP endpoints for scheduled functions (PROTOCOL §3.3) and the emulator's clock.

POST /api/cancel_job                        {id, componentId?}                       -> 200, empty body
POST /api/cancel_all_jobs                   {udfPath?, componentId?, startNextTs?, endNextTs?} (ns)
POST /api/delete_scheduled_functions_table  {componentId?}
POST /api/emulator/advance_clock            {ms}  (emulator only; `--clock manual`) -> {"now": ms, "nowNs": ns}
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from console.emulator import scheduler
from console.emulator.app import canonicalize_path
from console.emulator.errors import ApiError, ConvexEngineError
from console.emulator.http_api import _field, read_json, require_admin


def _service(request: Request) -> scheduler.SchedulerService:
    return scheduler.install(request.app.state.deployment)


async def cancel_job(request: Request) -> Response:
    await require_admin(request)
    body = await read_json(request)
    job_id = _field(body, "id", str)
    service = _service(request)
    try:
        await run_in_threadpool(service.cancel, job_id)
    except ConvexEngineError as error:
        raise ApiError(400, "InvalidScheduledJobId", str(error)) from None
    return Response(status_code=200)


def _optional_ns(body: dict, name: str) -> float | None:
    value = _field(body, name, (int, float), required=False)
    return None if value is None else value / 1_000_000


async def cancel_all_jobs(request: Request) -> Response:
    await require_admin(request)
    body = await read_json(request)
    udf_path = _field(body, "udfPath", str, required=False)
    start_ms, end_ms = _optional_ns(body, "startNextTs"), _optional_ns(body, "endNextTs")
    path = canonicalize_path(udf_path) if udf_path else None
    await run_in_threadpool(_service(request).cancel_all, path, start_ms, end_ms)
    return Response(status_code=200)


async def delete_scheduled_functions_table(request: Request) -> Response:
    await require_admin(request)
    await read_json(request)
    await run_in_threadpool(_service(request).delete_all)
    return Response(status_code=200)


async def advance_clock(request: Request) -> Response:
    await require_admin(request)
    body = await read_json(request)
    ms = _field(body, "ms", (int, float))
    clock = request.app.state.deployment.clock
    if getattr(clock, "kind", "wall") != "manual" or not hasattr(clock, "advance"):
        raise ApiError(400, "ClockNotManual", "The emulator runs on the wall clock: start it with `--clock manual`.")
    if ms < 0:
        raise ApiError(400, "InvalidClockAdvance", "The clock only moves forward: `ms` must be >= 0.")
    now_ns = await run_in_threadpool(clock.advance, ms)
    return JSONResponse({"now": now_ns / 1_000_000, "nowNs": now_ns})


def routes(deployment) -> list[Route]:
    post = ["POST"]
    return [
        Route("/api/cancel_job", cancel_job, methods=post),
        Route("/api/cancel_all_jobs", cancel_all_jobs, methods=post),
        Route("/api/delete_scheduled_functions_table", delete_scheduled_functions_table, methods=post),
        Route("/api/emulator/advance_clock", advance_clock, methods=post),
    ]
