"""The PyPI `convex` ConvexClient as a judge of the emulator's sync protocol.

Run in its own process: the client's blocking calls hold the GIL, so it cannot share a
process with the emulator. Usage: python py_peer.py <url> <admin key> <user jwt>.
Prints one JSON object per line.
"""

import json
import sys
import uuid

from convex import ConvexClient, ConvexError


def report(step, **data):
    print(json.dumps({"step": step, **data}, default=str), flush=True)


def next_where(updates, predicate, limit: int = 20):
    """The Rust client yields the current value on every Transition, even an unrelated one
    (as it would against Convex), so skip values until the expected one arrives."""
    for _ in range(limit):
        value = next(updates)
        if predicate(value):
            return value
    return value


def main() -> None:
    url, admin_key, user_token = sys.argv[1:4]
    channel = f"py-{uuid.uuid4().hex[:8]}"
    client = ConvexClient(url)
    report("initial", value=client.query("messages:list", {"channel": channel}))
    subscription = client.subscribe("messages:list", {"channel": channel})
    updates = iter(subscription)
    report("subscribed", value=next(updates))
    report("mutation", id=client.mutation("messages:send", {"channel": channel, "body": "a"}))
    report("after_own", value=next_where(updates, lambda v: len(v) == 1))
    other = ConvexClient(url)
    other.mutation("messages:send", {"channel": channel, "body": "b"})
    report("after_other", value=next_where(updates, lambda v: len(v) == 2))
    subscription.unsubscribe()
    report("action", value=client.action("messages:double", {"x": 5.0}))
    try:
        client.query("messages:fails")
        report("fails", error=None)
    except ConvexError as error:
        report("fails", data=error.data)
    admin = ConvexClient(url)
    admin.set_admin_auth(admin_key)
    report("admin", value=admin.query("_system/frontend/getTableMapping"))
    user = ConvexClient(url)
    user.set_auth(user_token)
    report("whoami", value=user.query("messages:whoami"))
    user.clear_auth()
    report("whoami_cleared", value=user.query("messages:whoami"))
    report("done")


if __name__ == "__main__":
    main()
