"""Named counters: a read-modify-write mutation that must never lose an update."""

from console.emulator.functions import mutation, query
from console.emulator.validators import v


def _find(ctx, name):
    return ctx.db.query("counters").with_index("by_name", lambda q: q.eq("name", name)).unique()


@mutation(args={"name": v.string(), "by": v.optional(v.number())}, returns=v.number())
def increment(ctx, args):
    """Add `by` (default 1) to the counter `name`, creating it at 0; returns the new value."""
    step = args.get("by", 1.0)
    counter = _find(ctx, args["name"])
    if counter is None:
        ctx.db.insert("counters", {"name": args["name"], "value": step})
        return step
    value = counter["value"] + step
    ctx.db.patch(counter["_id"], {"value": value})
    return value


@query(args={"name": v.string()}, returns=v.number())
def get(ctx, args):
    counter = _find(ctx, args["name"])
    return 0.0 if counter is None else counter["value"]
