"""A daily digest: scheduled for later with run_after, or run by the daily cron."""

from console.emulator.functions import internal_action, internal_query, mutation
from console.emulator.validators import v

DIGEST_DELAY_MS = 60 * 60 * 1000  # one hour
DIGEST_RECIPIENT = "team@example.com"


@mutation(args={"delayMs": v.optional(v.number())}, returns=v.id("_scheduled_functions"))
def scheduleDaily(ctx, args):
    """Schedules digest:send in one hour (or `delayMs`)."""
    return ctx.scheduler.run_after(args.get("delayMs", DIGEST_DELAY_MS), send, {"recipient": DIGEST_RECIPIENT})


@internal_query(args={})
def stats(ctx, args):
    return {"users": float(ctx.db.query("users").count()), "posts": float(ctx.db.query("posts").count())}


@internal_action(args={"recipient": v.optional(v.string())}, returns=v.id("emails"))
def send(ctx, args):
    numbers = ctx.run_query(stats, {})
    body = f"{int(numbers['users'])} users, {int(numbers['posts'])} posts."
    return ctx.run_mutation("emails:recordSent", {
        "to": args.get("recipient", DIGEST_RECIPIENT), "subject": "Your daily digest", "body": body,
    })
