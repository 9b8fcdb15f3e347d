"""`convex-console` start-up: parse the command line, pick a connection, hand over to the UI.

Choice without arguments: the default profile, else the first discovered deployment, else the
built-in emulator (demo app, seeded, free ports, per-user data dir). Typed flags win.
A bad URL, key or profile ends with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from console.connection import Connection, InvalidConnection
from console.sessions import ProfileError, Settings

PROG = "convex-console"
DATA_DIR_ENV = "CONVEX_CONSOLE_DATA_DIR"
EMULATOR_SEED_DOCUMENTS = 3000
VERIFY_TIMEOUT = 4.0


class StartupError(Exception):
    """Ends start-up with one line on stderr and `status`."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + traceback
        raise StartupError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="A keyboard-driven console for a Convex deployment.",
        epilog=(
            "Without arguments: the default profile, else a deployment discovered from the "
            "environment, .env.local, .env or .convex/local, else the built-in emulator."
        ),
    )
    parser.add_argument("--url", help="deployment URL, e.g. https://happy-otter-123.convex.cloud or http://127.0.0.1:3210")
    parser.add_argument("--site-url", help="HTTP-actions URL (derived from --url when omitted)")
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--admin-key", metavar="KEY", help="admin or deploy key (visible in `ps`; prefer --admin-key-env)")
    keys.add_argument("--admin-key-env", metavar="VAR", help="name of an environment variable holding the key")
    parser.add_argument("--profile", metavar="NAME", help="a saved profile")
    parser.add_argument("--emulator", action="store_true", help="start the built-in emulator and connect to it")
    parser.add_argument("--config-dir", metavar="DIR", help="config directory (also $CONVEX_CONSOLE_CONFIG_DIR)")
    parser.add_argument("--check", action="store_true", help="check the connection, print one line and exit")
    return parser


@dataclass
class Choice:
    connection: Connection
    origin: str  # "profile prod", "discovered from .env.local", "built-in emulator", "command line"
    profile: str | None = None
    emulator: Any = None  # the EmulatorProcess we started, stopped on exit


def main(argv: Sequence[str] | None = None, *, run_ui: Callable[..., int] | None = None,
         preload_ui: bool | None = None) -> int:
    """`preload_ui`: import the UI on a thread during start-up (default: when `run_ui` is the real UI)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    preload: UiPreload | None = None
    try:
        args = build_parser().parse_args(args_list)
        _check_combinations(args)
        if not args.check and (run_ui is None if preload_ui is None else preload_ui):
            preload = UiPreload.start()  # the UI loads while we read profiles, verify or start the emulator
        settings = Settings(args.config_dir)
        choice = choose_connection(args, settings)
    except StartupError as exc:
        return _fail(str(exc), exc.status, preload)
    except (InvalidConnection, ProfileError) as exc:
        return _fail(str(exc), 2, preload)
    try:
        settings.profile = choice.profile
        settings.origin = choice.origin
        settings.state_key = choice.profile or ("emulator" if choice.connection.kind == "emulator" else choice.connection.url)
        if args.check:
            return _check(choice)
        return (run_ui or launch_ui)(choice.connection, choice.origin, settings)
    except StartupError as exc:
        return _fail(str(exc), exc.status)
    finally:
        if choice.emulator is not None:
            choice.emulator.stop()
        settings.close()


def _fail(message: str, status: int, preload: "UiPreload | None" = None) -> int:
    if preload is not None:
        preload.wait()  # never leave a thread importing while the interpreter exits
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


class UiPreload:
    """Imports the UI (Textual, the app, the first screen) on a thread while the main thread
    does the waiting part of start-up: reading profiles, verifying a typed URL (network) or
    waiting for the built-in emulator's process. The main thread's own import of `screens.app` then
    finds it done (or waits for it: imports are locked per module). A failure here is ignored:
    the main thread imports again and reports it as usual."""

    MODULES = ("screens.app", "screens.data")

    def __init__(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ui-preload", daemon=True)

    @classmethod
    def start(cls) -> "UiPreload | None":
        if importlib.util.find_spec("screens") is None:
            return None
        preload = cls()
        preload._thread.start()
        return preload

    def _run(self) -> None:
        for name in self.MODULES:
            try:
                importlib.import_module(name)
            except BaseException:  # e.g. a screen being written; the main thread will say so
                return

    def wait(self, timeout: float = 30.0) -> None:
        self._thread.join(timeout)


def _check_combinations(args: argparse.Namespace) -> None:
    if args.emulator and (args.url or args.profile):
        raise StartupError("--emulator cannot be combined with --url or --profile")
    if args.url and args.profile:
        raise StartupError("give --url or --profile, not both")
    if args.site_url and not args.url:
        raise StartupError("--site-url needs --url")


# ---------------------------------------------------------------------------
# Choosing


def choose_connection(args: argparse.Namespace, settings: Settings) -> Choice:
    key = _typed_key(args)
    if args.emulator:
        return start_builtin_emulator()
    if args.url:
        connection = Connection.create(args.url, site_url=args.site_url, admin_key=key)
        _verify_typed(connection)
        return Choice(connection, "command line")
    if args.profile:
        return _from_profile(settings, args.profile, key)
    config = settings.load()
    if config.default_profile:
        return _from_profile(settings, config.default_profile, key, default=True)
    from console.discovery import discover

    found = discover()
    if found:
        connection = found[0].connection
        if key:
            connection = connection.with_credential(Connection.create(connection.url, admin_key=key).credential)
            _verify_typed(connection)
        return Choice(connection, found[0].origin)
    return start_builtin_emulator()


def _typed_key(args: argparse.Namespace) -> str | None:
    if args.admin_key_env:
        value = os.environ.get(args.admin_key_env)
        if not value:
            raise StartupError(f"environment variable {args.admin_key_env} is not set or empty")
        return value.strip()
    return args.admin_key


def _from_profile(settings: Settings, name: str, key: str | None, *, default: bool = False) -> Choice:
    profile = settings.get_profile(name)
    connection = settings.connection_for(profile)
    if key:
        connection = connection.with_credential(Connection.create(connection.url, admin_key=key).credential)
        _verify_typed(connection)
    origin = f"default profile {name}" if default else f"profile {name}"
    return Choice(connection, origin, profile=name)


def _verify_typed(connection: Connection) -> None:
    """A typed URL or key that the deployment refuses ends start-up; an unreachable one does
    not (the UI shows a banner with retry)."""
    from console.discovery import verify

    result = asyncio.run(verify(connection, timeout=VERIFY_TIMEOUT))
    if result.status in ("bad_key", "not_convex"):
        raise StartupError(result.message)


def _check(choice: Choice) -> int:
    from console.discovery import verify

    result = asyncio.run(verify(choice.connection, timeout=VERIFY_TIMEOUT))
    print(f"{choice.connection.summary()} ({choice.origin}): {result.status}: {result.message}")
    return {"ok": 0, "unreachable": 1}.get(result.status, 2)


# ---------------------------------------------------------------------------
# The built-in emulator


def emulator_data_dir() -> Path:
    """`$CONVEX_CONSOLE_DATA_DIR/emulator`, else the platform's user data dir."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser() / "emulator"
    import platformdirs

    return Path(platformdirs.user_data_dir("convex-console")) / "emulator"


def start_builtin_emulator(data_dir: Path | None = None) -> Choice:
    """Start the emulator (demo app, seeded on the first run, free ports) in a child process:
    it imports, opens and seeds its data on the other core while this process loads the UI,
    and then serves without competing with the UI for this interpreter's lock."""
    directory = data_dir or emulator_data_dir()
    try:
        running = EmulatorProcess.start(directory, seed=EMULATOR_SEED_DOCUMENTS)
    except EmulatorStartError as exc:  # a start-up failure is reported in one line
        raise StartupError(f"could not start the built-in emulator: {exc}", 1) from None
    connection = Connection.create(
        running.url,
        site_url=running.site_url,
        admin_key=running.admin_key,
        kind="emulator",
        deployment_name=running.instance_name,
    )
    return Choice(connection, "built-in emulator", emulator=running)


class EmulatorStartError(Exception):
    pass


class EmulatorProcess:
    """The built-in emulator served by a child process (`console.startup` is its program).

    The child writes one JSON line (URLs, admin key, instance name) on its stdout when it
    serves, then runs until its stdin closes: `stop()` closes it, and so does this process's
    end, however it ends. Its own messages go to `emulator.log` in the data dir, not to the
    terminal the UI draws on."""

    START_TIMEOUT = 60.0
    STOP_TIMEOUT = 15.0

    def __init__(self, process: Any, info: dict[str, Any]) -> None:
        self.process = process
        self.url: str = info["url"]
        self.site_url: str = info["site_url"]
        self.admin_key: str = info["admin_key"]
        self.instance_name: str | None = info.get("instance_name")

    def __repr__(self) -> str:  # never the key
        return f"EmulatorProcess(pid={self.process.pid}, url={self.url!r})"

    @classmethod
    def start(cls, data_dir: Path, *, seed: int) -> "EmulatorProcess":
        import json
        import subprocess

        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            log = _open_log(data_dir / "emulator.log")
        except OSError as exc:
            raise EmulatorStartError(f"cannot use {data_dir}: {exc.strerror or exc}") from None
        with log:
            try:
                process = subprocess.Popen(
                    [sys.executable, "-c", "from console.startup import serve_emulator_child; serve_emulator_child()",
                     str(data_dir), str(seed)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, start_new_session=True,
                )
            except OSError as exc:
                raise EmulatorStartError(str(exc)) from None
        line = _read_line(process.stdout, cls.START_TIMEOUT)
        try:
            info = json.loads(line) if line else None
        except ValueError:
            info = None
        if not isinstance(info, dict) or "url" not in info:
            process.kill()
            process.wait()
            raise EmulatorStartError(_last_line(data_dir / "emulator.log") or "it stopped before serving")
        return cls(process, info)

    def stop(self) -> None:
        import subprocess

        if self.process.poll() is not None:
            return
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=self.STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


LOG_ROTATE_BYTES = 10 * 1024 * 1024


def _open_log(path: Path):
    """The log to append to, owner-only; past LOG_ROTATE_BYTES it becomes `<name>.1` (one kept)."""
    try:
        if path.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")


def _read_line(stream: Any, timeout: float) -> str:
    """The child's first line, or "" when it ends (or says nothing in time)."""
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return stream.readline().decode("utf-8", "replace").strip()


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def serve_emulator_child() -> None:
    """The child's program: `python -c ... DATA_DIR SEED` (see EmulatorProcess)."""
    import json

    data_dir, seed = Path(sys.argv[1]), int(sys.argv[2])
    import console.client  # noqa: F401  first: it keeps httpx's CLI out (the emulator's auth imports httpx)
    from console.emulator.server import start_emulator

    running = start_emulator(data_dir=data_dir, seed=seed)
    try:
        deployment = getattr(running, "deployment", None)
        info = {"url": running.url, "site_url": running.site_url, "admin_key": running.admin_key,
                "instance_name": getattr(deployment, "instance_name", None)}
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # nobody reads the pipe from now on
        sys.stdin.read()  # until the console closes our stdin, or ends
    finally:
        running.stop()


# ---------------------------------------------------------------------------
# Hand-over


def launch_ui(connection: Connection, origin: str, settings: Settings) -> int:
    """Run the Textual app when it is installed; else print the connection and stop."""
    if importlib.util.find_spec("screens.app") is None:
        print(f"{connection.summary()} ({origin})")
        return 0
    from screens.app import run_app

    return int(run_app(connection, origin, settings) or 0)


if __name__ == "__main__":
    sys.exit(main())
