"""Messages per channel (an index range per subscription) and a few helpers."""

import time

from console.emulator.functions import ConvexError, action, mutation, query
from console.emulator.validators import v


@query(args={"channel": v.string()})
def list(ctx, args):
    rows = ctx.db.query("messages").with_index("by_channel", lambda q: q.eq("channel", args["channel"])).collect()
    return [row["body"] for row in rows]


@mutation(args={"channel": v.string(), "body": v.string()})
def send(ctx, args):
    return ctx.db.insert("messages", {"channel": args["channel"], "body": args["body"]})


@mutation(args={"channel": v.string(), "body": v.string(), "delay": v.number()})
def send_slowly(ctx, args):
    time.sleep(args["delay"])
    return ctx.db.insert("messages", {"channel": args["channel"], "body": args["body"]})


@query(args={})
def whoami(ctx, args):
    identity = ctx.auth.get_user_identity()
    return None if identity is None else identity.get("tokenIdentifier")


@query(args={})
def fails(ctx, args):
    raise ConvexError({"code": 7})


@mutation(args={})
def fails_mutation(ctx, args):
    raise ConvexError("nope")


@action(args={"x": v.number()})
def double(ctx, args):
    return args["x"] * 2
