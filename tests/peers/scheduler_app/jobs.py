"""Functions the scheduler tests schedule and race against."""

import threading
import time

from console.emulator.functions import action, internal_action, internal_mutation, mutation, query
from console.emulator.validators import v

# Actions block on these gates so a test can observe and cancel a running job.
GATES: dict[str, threading.Event] = {}
STARTED: dict[str, threading.Event] = {}


def gate(key: str) -> threading.Event:
    return GATES.setdefault(key, threading.Event())


def started(key: str) -> threading.Event:
    return STARTED.setdefault(key, threading.Event())


def _bump(ctx, name: str) -> float:
    counter = ctx.db.query("counters").filter(lambda q: q.eq(q.field("name"), name)).first()
    if counter is None:
        ctx.db.insert("counters", {"name": name, "value": 1.0})
        return 1.0
    ctx.db.patch(counter["_id"], {"value": counter["value"] + 1})
    return counter["value"] + 1


@internal_mutation(args={"name": v.string()})
def increment(ctx, args):
    ctx.db.insert("runs", {"name": args["name"]})
    return _bump(ctx, args["name"])


@mutation(args={"name": v.string()})
def bump(ctx, args):
    return _bump(ctx, args["name"])


@query(args={"name": v.string()})
def value(ctx, args):
    counter = ctx.db.query("counters").filter(lambda q: q.eq(q.field("name"), args["name"])).first()
    return 0.0 if counter is None else counter["value"]


@query(args={"name": v.string()})
def runs(ctx, args):
    return float(len(ctx.db.query("runs").filter(lambda q: q.eq(q.field("name"), args["name"])).collect()))


@mutation(args={"delayMs": v.number(), "name": v.string()})
def scheduleIncrement(ctx, args):
    return ctx.scheduler.run_after(args["delayMs"], increment, {"name": args["name"]})


@mutation(args={"name": v.string()})
def scheduleThenFail(ctx, args):
    ctx.scheduler.run_after(0, increment, {"name": args["name"]})
    raise Exception("rolled back on purpose")


@mutation(args={"n": v.number()})
def scheduleMany(ctx, args):
    for _ in range(int(args["n"])):
        ctx.scheduler.run_after(60_000, increment, {"name": "many"})
    return args["n"]


@action(args={"n": v.number()})
def scheduleManyFromAction(ctx, args):
    for _ in range(int(args["n"])):
        ctx.scheduler.run_after(60_000, increment, {"name": "many-action"})
    return args["n"]


@action(args={"name": v.string()})
def scheduleFromActionThenFail(ctx, args):
    ctx.scheduler.run_after(0, increment, {"name": args["name"]})
    raise Exception("the action failed after scheduling")


@mutation(args={})
def scheduleFarFuture(ctx, args):
    return ctx.scheduler.run_after(6 * 366 * 24 * 3600 * 1000, increment, {"name": "far"})


@mutation(args={})
def scheduleBadArgs(ctx, args):
    return ctx.scheduler.run_after(0, increment, {"name": 5.0})


@mutation(args={})
def scheduleMissing(ctx, args):
    return ctx.scheduler.run_after(0, "jobs:doesNotExist", {})


@mutation(args={})
def scheduleMissingModule(ctx, args):
    return ctx.scheduler.run_after(0, "nowhere:fn", {})


@query(args={})
def scheduleFromQuery(ctx, args):
    return ctx.scheduler.run_after(0, increment, {"name": "query"})


@mutation(args={})
def callActionDirectly(ctx, args):
    return ctx.run_action(slowAction, {"key": "direct"})


@mutation(args={"key": v.string(), "delayMs": v.optional(v.number())})
def scheduleSlowAction(ctx, args):
    return ctx.scheduler.run_after(args.get("delayMs", 0), slowAction, {"key": args["key"]})


@mutation(args={"jobId": v.id("_scheduled_functions")})
def cancelJob(ctx, args):
    ctx.scheduler.cancel(args["jobId"])


@query(args={"jobId": v.id("_scheduled_functions")})
def getJob(ctx, args):
    return ctx.db.system.get(args["jobId"])


@action(args={"key": v.string()})
def slowAction(ctx, args):
    """Waits for its gate (at most 20 s), then schedules a follow-up and records a run."""
    started(args["key"]).set()
    gate(args["key"]).wait(20)
    ctx.scheduler.run_after(0, increment, {"name": args["key"] + "-followup"})
    ctx.run_mutation(increment, {"name": args["key"]})
    return args["key"]


@internal_action(args={"seconds": v.number()})
def sleepy(ctx, args):
    time.sleep(args["seconds"])
    return args["seconds"]


@mutation(args={"seconds": v.number()})
def scheduleSleepy(ctx, args):
    return ctx.scheduler.run_after(0, sleepy, {"seconds": args["seconds"]})


@internal_action(args={})
def failingAction(ctx, args):
    raise Exception("the action broke")


@internal_mutation(args={})
def failingMutation(ctx, args):
    ctx.db.insert("runs", {"name": "failing"})
    raise Exception("the mutation broke")


@mutation(args={})
def scheduleFailures(ctx, args):
    return [ctx.scheduler.run_after(0, failingAction, {}), ctx.scheduler.run_after(0, failingMutation, {})]


@internal_mutation(args={})
def recordIdentity(ctx, args):
    ctx.db.insert("identities", {"signedIn": ctx.auth.get_user_identity() is not None})


@mutation(args={})
def scheduleIdentityCheck(ctx, args):
    assert ctx.auth.get_user_identity() is not None, "the caller must be signed in"
    return ctx.scheduler.run_after(0, recordIdentity, {})


@query(args={})
def identities(ctx, args):
    return [doc["signedIn"] for doc in ctx.db.query("identities").collect()]
