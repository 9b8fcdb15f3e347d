"""`_system/frontend/*` for scheduled functions and crons (PROTOCOL §3.3; backend system-udfs
`paginatedScheduledJobs.ts`, `scheduler.ts`, `listCronJobs.ts`, `listCronJobRuns.ts`)."""

from __future__ import annotations

from console.emulator import scheduler
from console.emulator.app import canonicalize_path
from console.emulator.functions import query
from console.emulator.system.cli import COMPONENT_ID, page_with_limits
from console.emulator.validators import pagination_opts_validator, v

INLINE_ARGS_LIMIT = 8 * 1024  # larger args are fetched with `scheduler:getArgs`


def raw_job(job: dict) -> dict:
    """A `_scheduled_functions` document as the raw `_scheduled_jobs` row the dashboard lists."""
    data = scheduler.args_bytes(job["args"])
    inline = len(data) <= INLINE_ARGS_LIMIT
    kind = job["state"]["kind"]
    return {
        "_id": job["_id"],
        "_creationTime": job["_creationTime"],
        "udfPath": job["name"],
        "udfArgs": data if inline else None,
        "argsId": None if inline else job["_id"],
        "state": {"type": kind},
        "nextTs": int(job["scheduledTime"] * 1_000_000) if kind in ("pending", "inProgress") else None,
    }


def _active_jobs(ctx):
    """Pending and running jobs: the two state kinds are adjacent in the state index."""
    return ctx.db.system.query(scheduler.JOBS_TABLE).with_index(
        scheduler.STATE_INDEX, lambda q: q.gte("state.kind", "inProgress").lte("state.kind", "pending")
    )


def modules(deployment) -> dict:
    scheduler.install(deployment)  # tables + ctx.scheduler, even before the executor starts

    @query(args={"paginationOpts": pagination_opts_validator, "udfPath": v.optional(v.string()),
                 "componentId": COMPONENT_ID})
    def paginated_scheduled_jobs(ctx, args):
        jobs = _active_jobs(ctx).order("asc")
        if args.get("udfPath") is not None:
            path = canonicalize_path(args["udfPath"])
            jobs = jobs.filter(lambda q: q.eq(q.field("name"), path))
        result = page_with_limits(jobs, args["paginationOpts"])
        result["page"] = [raw_job(job) for job in result["page"]]
        return result

    @query(args={"argsId": v.string(), "componentId": COMPONENT_ID})
    def get_args(ctx, args):
        normalized = ctx.db.system.normalize_id(scheduler.JOBS_TABLE, args["argsId"])
        job = ctx.db.system.get(normalized) if normalized else None
        if job is None:
            raise Exception(f"Scheduled job arguments not found: {args['argsId']}")
        return {"args": scheduler.args_bytes(job["args"])}

    @query(args={"componentId": COMPONENT_ID, "udfPath": v.optional(v.string())})
    def next_scheduled_job_timestamp(ctx, args):
        jobs = ctx.db.system.query(scheduler.JOBS_TABLE).with_index(
            scheduler.STATE_INDEX, lambda q: q.eq("state.kind", "pending"))
        if args.get("udfPath") is not None:
            path = canonicalize_path(args["udfPath"])
            jobs = jobs.filter(lambda q: q.eq(q.field("name"), path))
        first = jobs.first()
        return None if first is None else int(first["scheduledTime"] * 1_000_000)

    @query(args={"componentId": COMPONENT_ID})
    def list_cron_jobs(ctx, args):
        result = []
        for job in ctx.db.system.query(scheduler.CRON_JOBS_TABLE).collect():
            last_run = ctx.db.system.query(scheduler.CRON_LOGS_TABLE).with_index(
                "by_name_and_ts", lambda q: q.eq("name", job["name"])).order("desc").first()
            next_run = ctx.db.system.query(scheduler.CRON_NEXT_RUN_TABLE).with_index(
                "by_cron_job_id", lambda q: q.eq("cronJobId", job["_id"])).first()
            result.append({**job, "lastRun": last_run, "nextRun": next_run})
        return result

    @query(args={"componentId": COMPONENT_ID})
    def list_cron_job_runs(ctx, args):
        return ctx.db.system.query(scheduler.CRON_LOGS_TABLE).collect()

    return {
        "_system/frontend/paginatedScheduledJobs": {"default": paginated_scheduled_jobs},
        "_system/frontend/scheduler": {
            "getArgs": get_args, "nextScheduledJobTimestamp": next_scheduled_job_timestamp,
        },
        "_system/frontend/listCronJobs": {"default": list_cron_jobs},
        "_system/frontend/listCronJobRuns": {"default": list_cron_job_runs},
    }
