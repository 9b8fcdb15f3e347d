"""`convex-console emulator` as a subprocess: starts, prints URL and key, stops on SIGINT."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ENTRY = [sys.executable, "-c", "import sys; from console.cli import main; sys.exit(main())"]


def start(*args: str) -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen(
        [*ENTRY, "emulator", "--port", "0", "--site-port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    info = {}
    deadline = time.monotonic() + 60
    while "Admin key" not in info and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        key, _, value = line.strip().partition(": ")
        if value:
            info[key.strip()] = value.strip()
    assert "Admin key" in info, process.stderr.read() if process.poll() is not None else info
    return process, info


def stop(process: subprocess.Popen) -> tuple[int, str, str]:
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    return process.returncode, out, err


def test_emulator_serves_prints_once_and_stops_on_sigint(tmp_path):
    process, info = start("--in-memory", "--seed", "5")
    try:
        url = info["URL"]
        assert url.startswith("http://127.0.0.1:") and info["Site URL"].startswith("http://127.0.0.1:")
        key = info["Admin key"]
        assert key.startswith("convex-console|")
        assert httpx.get(f"{url}/instance_name").text == "convex-console"
        body = {"path": "_system/cli/tableSize", "args": {"tableName": "posts"}, "format": "json"}
        size = httpx.post(f"{url}/api/query", json=body, headers={"Authorization": f"Convex {key}"}).json()
        assert size["value"] == 5.0
        site = httpx.get(f"{info['Site URL']}/hello")
        assert site.status_code == 404 and site.text == "No HttpAction routed for /hello"
    finally:
        code, out, err = stop(process)
    assert code == 0, err
    assert "Traceback" not in err
    assert "Emulator stopped." in out
    assert key not in out  # printed once, at start only


def test_data_dir_keeps_key_and_data(tmp_path):
    data_dir = tmp_path / "data"
    process, info = start("--data-dir", str(data_dir))
    try:
        headers = {"Authorization": f"Convex {info['Admin key']}"}
        created = httpx.post(
            f"{info['URL']}/api/mutation",
            json={"path": "users:createUser", "args": {"clerkId": "kept", "email": "k@x"}},
            headers=headers,
        ).json()
        assert created["status"] == "success"
    finally:
        assert stop(process)[0] == 0
    key_file = data_dir / "admin_key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    process, again = start("--data-dir", str(data_dir))
    try:
        assert again["Admin key"] == info["Admin key"]
        found = httpx.post(
            f"{again['URL']}/api/query", json={"path": "users:getByClerkId", "args": {"clerkId": "kept"}}
        ).json()
        assert found["value"]["_id"] == created["value"]
    finally:
        assert stop(process)[0] == 0


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--port", "abc"], "argument --port: invalid int value: 'abc'"),
        (["--in-memory", "--data-dir", "x"], "not allowed with argument"),
        (["--clock", "sundial"], "argument --clock: invalid choice"),
        (["--port", "70000"], "is not a port number"),
        (["--app", "no_such_app_module"], "no module named 'no_such_app_module'"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, fragment):
    result = subprocess.run([*ENTRY, "emulator", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0]


def test_data_dir_that_is_a_file_is_a_clear_error(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    result = subprocess.run([*ENTRY, "emulator", "--data-dir", str(not_a_dir)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "cannot use" in result.stderr


def test_busy_port_is_a_clear_error(tmp_path):
    process, info = start("--in-memory")
    try:
        port = info["URL"].rsplit(":", 1)[1]
        result = subprocess.run([*ENTRY, "emulator", "--in-memory", "--port", port, "--site-port", "0"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr and "cannot listen" in result.stderr
    finally:
        stop(process)


def test_help_and_token_dispatch():
    result = subprocess.run([*ENTRY, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "convex-console emulator" in result.stdout and "--url" in result.stdout
    token = subprocess.run([*ENTRY, "token", "--help"], capture_output=True, text=True, timeout=60)
    assert token.returncode == 0 and "usage: convex-console token" in token.stdout


def _unsigned_jwt() -> str:
    import base64
    import json

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"sub": "user_1", "iss": "https://issuer.example", "aud": "convex", "note": "x" * 5000}
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2ln"


def test_output_into_a_closed_pipe_ends_quietly():
    """`convex-console token decode JWT | head`: no BrokenPipeError traceback."""
    process = subprocess.Popen([*ENTRY, "token", "decode", _unsigned_jwt()], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    process.stdout.close()  # the reader is gone before the command writes anything
    _, stderr = process.communicate(timeout=60)
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert process.returncode == 1


def test_http_audit_of_a_dead_deployment_says_so(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "CONVEX_CONSOLE_CONFIG_DIR": str(tmp_path / "config")}
    for extra in ([], ["--routes", "GET:/health"]):
        result = subprocess.run([*ENTRY, "http", "audit", "--url", f"http://127.0.0.1:{port}", "--env-dir",
                                 str(tmp_path), *extra], capture_output=True, text=True, timeout=60, env=env)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "Nothing audited: Cannot reach" in result.stdout
        assert "routes audited" not in result.stdout and "Traceback" not in result.stderr
