import time

from console.emulator.functions import internal_action, internal_mutation, mutation
from console.emulator.validators import v


@internal_mutation(args={"n": v.number()})
def record(ctx, args):
    """The job's work: one insert, stamped with the wall time the attempt started."""
    started = time.time() * 1000
    ctx.db.insert("done", {"n": args["n"], "startedAt": started})


@internal_action(args={"n": v.number()})
def ping(ctx, args):
    STARTS.append((args["n"], time.time() * 1000))
    return args["n"]


STARTS: list = []


@mutation(args={"first": v.number(), "count": v.number(), "at": v.number(), "kind": v.string()})
def scheduleBatch(ctx, args):
    target = record if args["kind"] == "mutation" else ping
    for n in range(int(args["first"]), int(args["first"] + args["count"])):
        ctx.scheduler.run_at(args["at"], target, {"n": float(n)})
