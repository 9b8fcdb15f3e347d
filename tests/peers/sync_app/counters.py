from console.emulator.functions import mutation, query
from console.emulator.validators import v


def _find(ctx, name):
    return ctx.db.query("counters").with_index("by_name", lambda q: q.eq("name", name)).unique()


@query(args={"name": v.string()})
def get(ctx, args):
    row = _find(ctx, args["name"])
    return 0.0 if row is None else row["value"]


@mutation(args={"name": v.string()})
def increment(ctx, args):
    row = _find(ctx, args["name"])
    if row is None:
        ctx.db.insert("counters", {"name": args["name"], "value": 1.0})
        return 1.0
    ctx.db.patch(row["_id"], {"value": row["value"] + 1})
    return row["value"] + 1


@mutation(args={"name": v.string(), "data": v.string()})
def put_blob(ctx, args):
    row = ctx.db.query("blobs").with_index("by_name", lambda q: q.eq("name", args["name"])).unique()
    if row is None:
        return ctx.db.insert("blobs", {"name": args["name"], "data": args["data"]})
    ctx.db.patch(row["_id"], {"data": args["data"]})
    return row["_id"]


@query(args={"name": v.string()})
def get_blob(ctx, args):
    row = ctx.db.query("blobs").with_index("by_name", lambda q: q.eq("name", args["name"])).unique()
    return None if row is None else row["data"]
