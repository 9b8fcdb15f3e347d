"""Shared fixtures: emulators served on real sockets from a background thread."""

from __future__ import annotations

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
