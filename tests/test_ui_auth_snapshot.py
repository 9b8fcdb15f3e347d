"""Snapshot of the Auth screen (pytest-textual-snapshot).

Deterministic: a fixed token (fixed claims, times and signature bytes), a fixed "now" injected
into the screen, TZ=UTC, fixed providers, and the emulator's random port masked in the status bar.
Update with `pytest tests/test_ui_auth_snapshot.py --snapshot-update`.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import time

import pytest

from console import tokens as T
from console.connection import Connection
from screens.app import ConsoleApp
from screens.auth import AuthScreen
from screens.widgets.status_bar import StatusBar

SIZE = (150, 44)
NOW = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
CLERK = "https://verb-noun-00.clerk.accounts.dev"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def fixed_token() -> str:
    """A Clerk-like session token without the "convex" template: aud is the app, not "convex"."""
    header = {"alg": "RS256", "kid": "ins_2abc", "typ": "JWT"}
    claims = {"azp": "http://localhost:5173", "aud": "my-app", "exp": int(NOW) + 23 * 60 + 5,
              "iat": int(NOW) - 60, "iss": CLERK, "nbf": int(NOW) - 70, "sid": "sess_2xyz", "sub": "user_2abc"}
    parts = [json.dumps(header, separators=(",", ":")).encode(), json.dumps(claims, separators=(",", ":")).encode(),
             bytes(range(64))]
    return ".".join(_b64(part) for part in parts)


@pytest.fixture(autouse=True)
def deterministic(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVEX_CONSOLE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def _until(pilot, condition, timeout=10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await pilot.pause(0.02)


def test_auth_screen_snapshot(snap_compare, emulator):
    connection = Connection.create(emulator.url, admin_key=emulator.admin_key, kind="emulator")
    app = ConsoleApp(connection, "built-in emulator", None)
    app.animation_level = "none"
    token = fixed_token()

    async def run_before(pilot) -> None:
        await _until(pilot, lambda: app.current_mode == "data")
        await pilot.press("5")
        await _until(pilot, lambda: isinstance(app.screen, AuthScreen))
        screen = app.screen
        await _until(pilot, lambda: "listing" not in screen.providers_note or screen.providers is not None)
        screen.clock = lambda: NOW
        screen.providers = T.parse_providers([{"domain": CLERK, "applicationID": "convex"}])
        screen.set_token(token)
        screen._remember(token)
        screen.query_one("#auth-report-pane").focus()  # no blinking cursor in the picture
        app.connection = dataclasses.replace(connection, url="http://127.0.0.1:3210")
        screen.query_one(StatusBar)._refresh_text()
        await pilot.pause()
        assert screen.report.match is not None and not screen.report.match.accepted

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
