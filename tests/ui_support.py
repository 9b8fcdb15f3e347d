"""Helpers shared by the Pilot tests of the screens."""

from __future__ import annotations

import asyncio

from textual.widgets import Static

from console.connection import Connection


def connect(emulator, **options) -> Connection:
    """A connection to the test emulator with its admin key."""
    return Connection.create(emulator.url, admin_key=emulator.admin_key, kind="emulator", **options)


async def until(pilot, condition, timeout: float = 20.0) -> None:
    """Wait for `condition()` while the app runs; fail when it does not hold in time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.02)


def text_of(screen, selector: str) -> str:
    """What a Static shows, as plain text."""
    return str(screen.query_one(selector, Static).render())
