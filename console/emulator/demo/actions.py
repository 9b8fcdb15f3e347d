"""Side effects, scheduled from mutations (the seed's Workflow 3): the welcome email and a
partner webhook that always fails (so the Schedules screen has a failed job to show)."""

import logging

from console.emulator.functions import internal_action, mutation
from console.emulator.validators import v

logger = logging.getLogger(__name__)

PARTNER_WEBHOOK_URL = "https://partner.example.com/hooks/new-user"


@internal_action(args={"email": v.string(), "name": v.string()}, returns=v.id("emails"))
def sendWelcomeEmail(ctx, args):
    """Scheduled by users:createUser with run_after(0). The demo has no email provider: the
    email is recorded in the `emails` table by an internal mutation instead of being sent."""
    logger.info("Sending the welcome email to %s", args["email"])
    return ctx.run_mutation("emails:recordSent", {
        "to": args["email"],
        "subject": "Welcome!",
        "body": f"Hello {args['name']}, welcome to our app!",
    })


@internal_action(args={"url": v.string(), "event": v.string()})
def flakyWebhook(ctx, args):
    """Notifies a partner that is always down: the scheduled job ends `failed`."""
    logger.info("POST %s (%s)", args["url"], args["event"])
    raise Exception(f"Webhook {args['url']} answered 503 Service Unavailable")


@mutation(args={"event": v.optional(v.string())}, returns=v.id("_scheduled_functions"))
def notifyPartner(ctx, args):
    """Schedules the partner webhook right after this mutation commits."""
    return ctx.scheduler.run_after(0, flakyWebhook, {"url": PARTNER_WEBHOOK_URL, "event": args.get("event", "user.created")})
