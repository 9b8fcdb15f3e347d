"""`convex-console`: the console (default), `emulator`, and `token` subcommands."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

from console.allocator import keep_large_buffers_on_the_heap


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr and exit 2, never a traceback."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _emulator_parser() -> _Parser:
    parser = _Parser(prog="convex-console emulator", description="Serve the local Convex-compatible emulator.")
    parser.add_argument("--port", type=int, default=3210, help="cloud port: HTTP API and WebSocket (default 3210)")
    parser.add_argument("--site-port", type=int, default=3211, help="site port: HTTP actions (default 3211)")
    storage = parser.add_mutually_exclusive_group()
    storage.add_argument("--data-dir", help="where the database and admin key live (default: user data dir)")
    storage.add_argument("--in-memory", action="store_true", help="keep nothing on disk")
    parser.add_argument("--app", default="console.emulator.demo", help="Python package of the app (default: the demo app)")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="seed N posts when the tables are empty")
    parser.add_argument("--clock", choices=("wall", "manual"), default="wall", help="wall clock or a manual clock")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--instance-name", default="convex-console", help=argparse.SUPPRESS)
    return parser


def _check_port(parser: _Parser, name: str, port: int) -> None:
    if not 0 <= port <= 65535:
        parser.error(f"argument {name}: {port} is not a port number (0-65535)")


def run_emulator(argv: list[str]) -> int:
    parser = _emulator_parser()
    options = parser.parse_args(argv)
    _check_port(parser, "--port", options.port)
    _check_port(parser, "--site-port", options.site_port)
    if options.seed < 0:
        parser.error("argument --seed: must be >= 0")
    if options.port == options.site_port and options.port != 0:
        parser.error("--port and --site-port must differ")
    if importlib.util.find_spec(options.app.split(".")[0]) is None:
        parser.error(f"argument --app: no module named {options.app!r}")

    from console.emulator.server import Deployment, serve

    try:
        deployment = Deployment.create(
            data_dir=options.data_dir,
            in_memory=options.in_memory,
            app=options.app,
            clock=options.clock,
            instance_name=options.instance_name,
            seed=options.seed,
        )
    except ModuleNotFoundError as error:
        print(f"convex-console emulator: error: cannot load app {options.app!r}: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        where = options.data_dir or "the default data dir"
        print(f"convex-console emulator: error: cannot use {where}: {error.strerror or error}", file=sys.stderr)
        return 2

    def announce(dep) -> None:
        where = "in memory" if dep.data_dir is None else str(dep.data_dir)
        print(f"Convex emulator running ({where})", flush=True)
        print(f"  URL:       {dep.cloud_url}", flush=True)
        print(f"  Site URL:  {dep.site_url}", flush=True)
        print(f"  Admin key: {dep.admin_key}", flush=True)
        print("Press Ctrl+C to stop.", flush=True)

    try:
        serve(deployment, host=options.host, port=options.port, site_port=options.site_port, on_ready=announce)
    except OSError as error:
        deployment.close()
        print(f"convex-console emulator: error: cannot listen on {options.host}: {error.strerror or error}", file=sys.stderr)
        return 1
    print("Emulator stopped.", flush=True)
    return 0


def run_token(argv: list[str]) -> int:
    try:
        token_cli = importlib.import_module("console.token_cli")
    except ModuleNotFoundError as error:
        if error.name != "console.token_cli":
            raise
        print("convex-console token: not available in this build yet.", file=sys.stderr)
        return 2
    return token_cli.main(argv) or 0


def run_console(argv: list[str]) -> int:
    try:
        startup = importlib.import_module("console.startup")
    except ModuleNotFoundError as error:
        if error.name != "console.startup":
            raise
        print(
            "The console UI is not available in this build yet. "
            "Run `convex-console emulator` to start the local emulator.",
            file=sys.stderr,
        )
        return 1
    return startup.main(argv) or 0


def run_http(argv: list[str]) -> int:
    from console import http_cli

    return http_cli.main(argv) or 0


COMMANDS = {"emulator": run_emulator, "token": run_token, "http": run_http}


BROKEN_PIPE_EXIT = 1


def main(argv: list[str] | None = None) -> int:
    """Run a command; output cut short by a closed pipe (`... | head`) ends quietly, as Unix tools do."""
    keep_large_buffers_on_the_heap()  # files and bodies of any size stream without page faults
    try:
        code = _dispatch(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()  # inside the try: a closed pipe shows up here, not at interpreter exit
    except BrokenPipeError:
        # Python's documented recipe: point stdout at devnull so the final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return BROKEN_PIPE_EXIT
    return code


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] in COMMANDS:
        code = COMMANDS[argv[0]](argv[1:])
    elif argv and argv[0] in ("-h", "--help"):
        print(
            "Commands:\n"
            "  convex-console [options]    open the console (options below)\n"
            "  convex-console emulator     serve the local emulator (see `emulator --help`)\n"
            "  convex-console token        decode, verify and mint JWTs (see `token --help`)\n"
            "  convex-console http audit   audit HTTP actions for CORS mistakes (see `http --help`)\n",
            flush=True,
        )
        try:
            code = run_console(argv)
        except SystemExit as done:  # argparse's --help
            code = done.code or 0
    else:
        code = run_console(argv)
    return code


if __name__ == "__main__":
    sys.exit(main())
