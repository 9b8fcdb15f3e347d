"""Posts: reads through the schema's indexes, paginated lists, and the write operations."""

from console.emulator.functions import ConvexError, internal_query, mutation, query
from console.emulator.validators import pagination_opts_validator, pagination_result_validator, v

from ._util import now_ms
from .schema import post_doc

DEFAULT_LIST_LIMIT = 20


@query(args={"limit": v.optional(v.number())}, returns=v.array(post_doc))
def list(ctx, args):  # noqa: A001 - the Convex function is called `list`
    """The newest posts first (at most `limit`, default 20)."""
    return ctx.db.query("posts").order("desc").take(int(args.get("limit", DEFAULT_LIST_LIMIT)))


@query(args={"id": v.id("posts")}, returns=v.union(post_doc, v.null()))
def get(ctx, args):
    return ctx.db.get(args["id"])


@query(args={"paginationOpts": pagination_opts_validator}, returns=pagination_result_validator(post_doc))
def paginate(ctx, args):
    """All posts, newest first, one page at a time."""
    return ctx.db.query("posts").order("desc").paginate(args["paginationOpts"])


@query(args={"authorId": v.id("users")}, returns=v.array(post_doc))
def getByAuthor(ctx, args):
    return ctx.db.query("posts").with_index("by_author", lambda q: q.eq("authorId", args["authorId"])).collect()


@query(args={"paginationOpts": pagination_opts_validator}, returns=pagination_result_validator(post_doc))
def listPublished(ctx, args):
    """Published posts, newest first, one page at a time (through `by_published`)."""
    return (
        ctx.db.query("posts")
        .with_index("by_published", lambda q: q.eq("published", True))
        .order("desc")
        .paginate(args["paginationOpts"])
    )


@query(args={"authorId": v.id("users"), "published": v.boolean()}, returns=v.array(post_doc))
def getByAuthorAndStatus(ctx, args):
    return (
        ctx.db.query("posts")
        .with_index(
            "by_author_and_published",
            lambda q: q.eq("authorId", args["authorId"]).eq("published", args["published"]),
        )
        .collect()
    )


@mutation(
    args={
        "title": v.string(),
        "content": v.string(),
        "authorId": v.id("users"),
        "published": v.optional(v.boolean()),
    },
    returns=v.id("posts"),
)
def create(ctx, args):
    if ctx.db.get(args["authorId"]) is None:
        raise ConvexError({"code": "AUTHOR_NOT_FOUND", "authorId": args["authorId"]})
    now = now_ms()
    return ctx.db.insert(
        "posts",
        {
            "title": args["title"],
            "content": args["content"],
            "authorId": args["authorId"],
            "published": args.get("published", False),
            "createdAt": now,
            "updatedAt": now,
        },
    )


def _require_post(ctx, post_id):
    post = ctx.db.get(post_id)
    if post is None:
        raise ConvexError({"code": "POST_NOT_FOUND", "id": post_id})
    return post


@mutation(args={"id": v.id("posts"), "title": v.optional(v.string()), "content": v.optional(v.string())}, returns=v.null())
def update(ctx, args):
    _require_post(ctx, args["id"])
    changes = {key: args[key] for key in ("title", "content") if key in args}
    changes["updatedAt"] = now_ms()
    ctx.db.patch(args["id"], changes)
    return None


def _set_published(ctx, post_id, published: bool):
    _require_post(ctx, post_id)
    ctx.db.patch(post_id, {"published": published, "updatedAt": now_ms()})


@mutation(args={"id": v.id("posts")}, returns=v.null())
def publish(ctx, args):
    _set_published(ctx, args["id"], True)


@mutation(args={"id": v.id("posts")}, returns=v.null())
def unpublish(ctx, args):
    _set_published(ctx, args["id"], False)


@mutation(args={"id": v.id("posts")}, returns=v.null())
def deletePost(ctx, args):
    """Delete the post and its comments."""
    _require_post(ctx, args["id"])
    for comment in ctx.db.query("comments").with_index("by_post", lambda q: q.eq("postId", args["id"])):
        ctx.db.delete(comment["_id"])
    ctx.db.delete(args["id"])


@internal_query(args={"authorId": v.id("users")}, returns=v.number())
def countByAuthor(ctx, args):
    posts = ctx.db.query("posts").with_index("by_author", lambda q: q.eq("authorId", args["authorId"]))
    return float(sum(1 for _ in posts))


@internal_query(args={}, returns=v.number())
def countAll(ctx, args):
    return float(ctx.db.query("posts").count())
