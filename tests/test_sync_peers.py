"""The official clients as judges: the PyPI `convex` ConvexClient and the npm `convex`
ConvexClient (+ ConvexHttpClient), each in its own process, against the emulator."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PEERS = Path(__file__).parent / "peers"
sys.path.insert(0, str(PEERS))

from console.emulator.auth import auth_for  # noqa: E402
from console.emulator.server import start_emulator  # noqa: E402

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def emulator():
    with start_emulator(app="sync_app") as running:
        yield running


def run_peer(command: list[str], timeout: float) -> dict:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=PEERS)
    steps = {}
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            message = json.loads(line)
            steps[message.pop("step")] = message
    assert result.returncode == 0 and "done" in steps, (result.stdout[-3000:], result.stderr[-3000:])
    return steps


def test_pypi_convex_client(emulator):
    token = auth_for(emulator.deployment).mint("py_user")
    steps = run_peer([sys.executable, str(PEERS / "py_peer.py"), emulator.url, emulator.admin_key, token], 60)
    assert steps["initial"]["value"] == [] and steps["subscribed"]["value"] == []
    assert steps["after_own"]["value"] == ["a"]
    assert steps["after_other"]["value"] == ["a", "b"]  # pushed after another client's mutation
    assert steps["action"]["value"] == 10.0
    assert steps["fails"]["data"] == {"code": "ConvexInt64(7)"}  # an int64 survives the round trip
    assert "messages" in steps["admin"]["value"].values()
    assert steps["whoami"]["value"].endswith("|py_user")
    assert steps["whoami_cleared"]["value"] is None


def _npm_convex() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the npm `convex` peer test (not installed here)")
    package = PEERS / "node_modules" / "convex" / "package.json"
    if not package.exists():
        install = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
                                 cwd=PEERS, capture_output=True, text=True, timeout=300)
        assert install.returncode == 0, install.stderr[-2000:]
    return Path(node)


def test_npm_convex_client(emulator):
    node = _npm_convex()
    token = auth_for(emulator.deployment).mint("js_user")
    steps = run_peer([str(node), str(PEERS / "js_peer.mjs"), emulator.url, emulator.admin_key, token], 120)
    assert steps["initial"]["value"] == []
    assert isinstance(steps["mutation"]["id"], str) and len(steps["mutation"]["id"]) == 32
    assert steps["update"]["value"] == ["a", "b"]
    assert steps["action"]["value"] == 8
    assert steps["http"]["value"] == ["a", "b"]
    assert steps["fails"]["data"] == "7"
    assert "messages" in steps["admin"]["value"].values()
    assert steps["auth"]["authenticated"] is True
    assert steps["whoami"]["value"].endswith("|js_user")
