"""Emails: an action for the side effect, a mutation to record it (the seed's pattern).

The welcome email itself is `actions:sendWelcomeEmail`, scheduled by users:createUser.
"""

import logging

from console.emulator.functions import action, internal_mutation, query
from console.emulator.validators import v

from ._util import now_ms
from .schema import email_doc

logger = logging.getLogger(__name__)


@internal_mutation(args={"to": v.string(), "subject": v.string(), "body": v.string()}, returns=v.id("emails"))
def recordSent(ctx, args):
    return ctx.db.insert("emails", {**args, "sentAt": now_ms()})


def _send(ctx, to: str, subject: str, body: str) -> str:
    # The demo has no email provider: "sending" is a log line plus a row in `emails`.
    logger.info("Sending email to %s: %s", to, subject)
    return ctx.run_mutation("emails:recordSent", {"to": to, "subject": subject, "body": body})


@action(args={"to": v.string()}, returns=v.id("emails"))
def sendTestEmail(ctx, args):
    return _send(ctx, args["to"], "Test email", "This is a test email from the Convex Console demo.")


@query(args={"to": v.string()}, returns=v.array(email_doc))
def listSentTo(ctx, args):
    return ctx.db.query("emails").with_index("by_to", lambda q: q.eq("to", args["to"])).collect()
