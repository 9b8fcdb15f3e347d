"""Users: creation (with the seed's scheduled welcome email), lookups by index, the viewer."""

from console.emulator.functions import ConvexError, internal_query, mutation, query
from console.emulator.validators import v

from ._util import now_ms
from .schema import user_doc

DEFAULT_LIST_LIMIT = 100


@mutation(
    args={"clerkId": v.string(), "email": v.string(), "name": v.optional(v.string())},
    returns=v.id("users"),
)
def createUser(ctx, args):
    """Insert a user and schedule the welcome email (actions:sendWelcomeEmail).

    A clerkId already taken is a ConvexError with code USER_EXISTS.
    """
    existing = ctx.db.query("users").with_index("by_clerkId", lambda q: q.eq("clerkId", args["clerkId"])).unique()
    if existing is not None:
        raise ConvexError({"code": "USER_EXISTS", "clerkId": args["clerkId"]})
    user = {"clerkId": args["clerkId"], "email": args["email"], "createdAt": now_ms()}
    if "name" in args:
        user["name"] = args["name"]
    user_id = ctx.db.insert("users", user)
    # Workflow 3: the side effect runs in an action scheduled right after this commit.
    name = args.get("name") or args["email"].split("@")[0]
    ctx.scheduler.run_after(0, "actions:sendWelcomeEmail", {"email": args["email"], "name": name})
    return user_id


@query(args={"clerkId": v.string()}, returns=v.union(user_doc, v.null()))
def getByClerkId(ctx, args):
    return ctx.db.query("users").with_index("by_clerkId", lambda q: q.eq("clerkId", args["clerkId"])).unique()


@query(args={"email": v.string()}, returns=v.union(user_doc, v.null()))
def getByEmail(ctx, args):
    return ctx.db.query("users").with_index("by_email", lambda q: q.eq("email", args["email"])).first()


@query(args={"limit": v.optional(v.number())}, returns=v.array(user_doc))
def list(ctx, args):  # noqa: A001 - the Convex function is called `list`
    """The newest users first (at most `limit`, default 100)."""
    return ctx.db.query("users").order("desc").take(int(args.get("limit", DEFAULT_LIST_LIMIT)))


@query(args={})
def viewer(ctx, args):
    """The caller's identity, or null when not signed in (the seed's auth pattern)."""
    return ctx.auth.get_user_identity()


@query(args={})
def me(ctx, args):
    """The signed-in user's document; raises "Unauthorized" without an identity."""
    identity = ctx.auth.get_user_identity()
    if identity is None:
        raise Exception("Unauthorized")
    return ctx.db.query("users").with_index("by_clerkId", lambda q: q.eq("clerkId", identity["subject"])).unique()


@internal_query(args={"id": v.id("users")}, returns=v.union(user_doc, v.null()))
def getById(ctx, args):
    return ctx.db.get(args["id"])
