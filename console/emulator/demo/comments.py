"""Comments on posts."""

from console.emulator.functions import ConvexError, mutation, query
from console.emulator.validators import v

from ._util import now_ms
from .schema import comment_doc


@mutation(args={"postId": v.id("posts"), "authorId": v.id("users"), "body": v.string()}, returns=v.id("comments"))
def add(ctx, args):
    if ctx.db.get(args["postId"]) is None:
        raise ConvexError({"code": "POST_NOT_FOUND", "id": args["postId"]})
    return ctx.db.insert(
        "comments",
        {"postId": args["postId"], "authorId": args["authorId"], "body": args["body"], "createdAt": now_ms()},
    )


@query(args={"postId": v.id("posts")}, returns=v.array(comment_doc))
def listForPost(ctx, args):
    return ctx.db.query("comments").with_index("by_post", lambda q: q.eq("postId", args["postId"])).collect()
