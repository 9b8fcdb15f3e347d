"""Command line: argument errors in a subprocess (one line, exit 2), and the connection choice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from console.connection import Connection
from console.sessions import Profile, Settings
from console.startup import main

ROOT = Path(__file__).resolve().parents[1]
SECRET = "prod:happy-otter-123|0123456789abcdef0123a1b2"


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "CONVEX" not in k}
    env.update(CONVEX_CONSOLE_CONFIG_DIR=str(tmp_path / "config"), CONVEX_CONSOLE_DATA_DIR=str(tmp_path / "data"))
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def run_cli(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "console.startup", *args],
        cwd=tmp_path, env=clean_env(tmp_path, **extra), capture_output=True, text=True, timeout=60,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convex-console: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_console_core_does_not_import_textual():
    code = "import console, console.client, console.sessions, console.discovery, console.startup; import sys; print('textual' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_client_never_imports_the_emulator():
    code = ("import console.client, console.connection, console.discovery, console.sessions, console.startup, sys; "
            "print(sorted(m for m in sys.modules if m.startswith('console.emulator')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["--url", "ftp://example.com"], ["must start with http:// or https://"]),
        (["--url", "127.0.0.1:3210"], ["has no scheme"]),
        (["--url", "https://happy-otter-123.convex.site"], [".convex.site", "https://happy-otter-123.convex.cloud"]),
        (["--url", "http://127.0.0.1:3210", "--admin-key-env", "NO_SUCH_VAR_X"], ["NO_SUCH_VAR_X is not set"]),
        (["--url", "http://127.0.0.1:3210", "--admin-key", "has space"], ["spaces"]),
        (["--profile", "nope"], ["No profile named 'nope'"]),
        (["--emulator", "--url", "http://127.0.0.1:3210"], ["--emulator cannot be combined"]),
        (["--bogus"], ["unrecognized arguments: --bogus"]),
        (["--admin-key", "a", "--admin-key-env", "B"], ["not allowed with argument"]),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, args, fragments):
    assert_one_line_error(run_cli(tmp_path, *args), *fragments)


def test_help(tmp_path):
    result = run_cli(tmp_path, "--help")
    assert result.returncode == 0
    for flag in ("--url", "--admin-key", "--admin-key-env", "--profile", "--emulator", "--config-dir"):
        assert flag in result.stdout


def test_check_unreachable_exits_1_without_secret(tmp_path):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    result = run_cli(tmp_path, "--url", f"http://127.0.0.1:{port}", "--admin-key-env", "K", "--check", K=SECRET)
    assert result.returncode == 1, result.stderr
    assert "unreachable" in result.stdout and "prod:happy-otter-123|••••a1b2" in result.stdout
    assert SECRET not in result.stdout + result.stderr


class Captured:
    def __init__(self) -> None:
        self.calls: list[tuple[Connection, str, Settings]] = []

    def __call__(self, connection, origin, settings) -> int:
        self.calls.append((connection, origin, settings))
        return 0


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    for name in list(os.environ):
        if "CONVEX" in name:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_default_profile_is_chosen(isolated):
    settings = Settings(isolated / "config")
    settings.save_profile(Profile("staging", "http://127.0.0.1:3999"), secret="staging|abcdefabcdefabcdef")
    (isolated / ".env.local").write_text("CONVEX_URL=http://127.0.0.1:4444\n")
    ui = Captured()
    assert main(["--config-dir", str(isolated / "config")], run_ui=ui) == 0
    connection, origin, got = ui.calls[0]
    assert connection.url == "http://127.0.0.1:3999" and origin == "default profile staging"
    assert got.profile == "staging" and got.state_key == "staging"


def test_named_profile_beats_default(isolated):
    settings = Settings(isolated / "config")
    settings.save_profile(Profile("a", "http://127.0.0.1:3001"))
    settings.save_profile(Profile("b", "http://127.0.0.1:3002"))
    ui = Captured()
    assert main(["--config-dir", str(isolated / "config"), "--profile", "b"], run_ui=ui) == 0
    assert ui.calls[0][0].url == "http://127.0.0.1:3002" and ui.calls[0][1] == "profile b"


def test_discovered_when_no_profile(isolated):
    (isolated / ".env.local").write_text("CONVEX_URL=http://127.0.0.1:4444\n")
    ui = Captured()
    assert main(["--config-dir", str(isolated / "config")], run_ui=ui) == 0
    connection, origin, settings = ui.calls[0]
    assert connection.url == "http://127.0.0.1:4444"
    assert origin == "discovered from CONVEX_URL in .env.local"
    assert settings.profile is None and settings.state_key == "http://127.0.0.1:4444"


def test_url_from_command_line_unreachable_still_opens_ui(isolated):
    ui = Captured()
    assert main(["--config-dir", str(isolated / "config"), "--url", "http://127.0.0.1:9"], run_ui=ui) == 0
    assert ui.calls[0][1] == "command line" and ui.calls[0][0].credential.kind == "none"


def test_built_in_emulator_runs_in_a_child_process(tmp_path):
    import httpx

    from console.startup import EmulatorProcess

    emulator = EmulatorProcess.start(tmp_path / "emulator", seed=20)
    try:
        assert emulator.admin_key not in repr(emulator)
        assert httpx.get(emulator.url + "/instance_name", timeout=10).status_code == 200
        response = httpx.post(emulator.url + "/api/query", json={"path": "posts:list", "args": {}},
                              headers={"Authorization": f"Convex {emulator.admin_key}"}, timeout=10)
        assert response.json()["status"] == "success"
    finally:
        emulator.stop()
    assert emulator.process.returncode == 0


def test_built_in_emulator_on_an_unusable_data_dir_says_why(tmp_path):
    from console.startup import EmulatorProcess, EmulatorStartError

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(EmulatorStartError, match="cannot use"):
        EmulatorProcess.start(blocker / "emulator", seed=0)


def test_emulator_log_is_owner_only_and_rotated(tmp_path, monkeypatch):
    from console import startup

    monkeypatch.setattr(startup, "LOG_ROTATE_BYTES", 100)
    path = tmp_path / "emulator.log"
    with startup._open_log(path) as log:
        log.write(b"x" * 150)
    assert path.stat().st_mode & 0o777 == 0o600
    with startup._open_log(path) as log:  # over the limit: moved aside, a fresh log begins
        log.write(b"new\n")
    assert (tmp_path / "emulator.log.1").read_bytes() == b"x" * 150
    assert path.read_bytes() == b"new\n"
    with startup._open_log(path) as log:  # under the limit: appended
        log.write(b"more\n")
    assert path.read_bytes() == b"new\nmore\n"
