"""Shared fixtures: emulators served on real sockets from a background thread."""

from __future__ import annotations

import time

import pytest

from console.emulator.server import RunningEmulator, start_emulator

SMALL_SEED = 50


@pytest.fixture
def emulator_factory():
    """`emulator_factory(**options) -> RunningEmulator` (options of `Deployment.create`:
    data_dir | in_memory, app, clock, seed, ...); every emulator is stopped after the test."""
    started: list[RunningEmulator] = []

    def make(**options) -> RunningEmulator:
        emulator = start_emulator(**options)
        started.append(emulator)
        return emulator

    yield make
    for emulator in reversed(started):
        emulator.stop()


@pytest.fixture
def emulator(emulator_factory) -> RunningEmulator:
    """An in-memory emulator running the demo app with a small seed."""
    return emulator_factory(seed=SMALL_SEED)


CONVEX_ENV_VARS = ("CONVEX_DEPLOYMENT", "CONVEX_URL", "CONVEX_SELF_HOSTED_URL", "CONVEX_SELF_HOSTED_ADMIN_KEY",
                   "CONVEX_DEPLOY_KEY", "VITE_CONVEX_URL", "NEXT_PUBLIC_CONVEX_URL")


@pytest.fixture
def ui_isolation(tmp_path, monkeypatch):
    """The screens never see the developer's config, data, Convex variables, folder or time zone."""
    monkeypatch.setenv("CONVEX_CONSOLE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("CONVEX_CONSOLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    for name in CONVEX_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path / "config"
    monkeypatch.undo()
    time.tzset()
