"""Housekeeping run by the demo's crons."""

import time

from console.emulator.functions import internal_mutation
from console.emulator.validators import v

EMAIL_RETENTION_MS = 30 * 24 * 60 * 60 * 1000
BATCH = 100


@internal_mutation(args={}, returns=v.number())
def cleanupEmails(ctx, args):
    """Deletes up to 100 emails sent more than 30 days ago; returns how many."""
    cutoff = time.time() * 1000 - EMAIL_RETENTION_MS
    old = ctx.db.query("emails").filter(lambda q: q.lt(q.field("sentAt"), cutoff)).take(BATCH)
    for email in old:
        ctx.db.delete(email["_id"])
    return float(len(old))
