"""`convex-console http audit`: the CORS audit of a deployment's HTTP actions, without the UI.

Exit status: 0 every route would work from a browser, 1 at least one would fail (or the
routes could not be listed), 2 bad arguments, no deployment, or the deployment is unreachable
(nothing was audited).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="convex-console http", description="Check a deployment's HTTP actions.",
                     epilog="exit status: 0 all routes work from a browser, 1 some would fail, "
                            "2 bad arguments or the deployment is unreachable")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    audit = commands.add_parser(
        "audit",
        help="CORS audit: preflight, real request and a provoked error per route",
        description="Sends, per HTTP route, the browser's preflight, the real request (POST/PUT/PATCH "
                    "routes really run) and a provoked error, and reports what a browser would block.",
    )
    where = audit.add_mutually_exclusive_group()
    where.add_argument("--profile", help="a saved profile (default: the default profile, else discovery)")
    where.add_argument("--url", help="deployment URL (the .convex.cloud one, or http://127.0.0.1:3210)")
    audit.add_argument("--site-url", help="HTTP actions URL when it is not derived from --url")
    audit.add_argument("--admin-key-env", metavar="VAR", help="environment variable holding the admin key")
    audit.add_argument("--route", metavar="PATH", help="audit only this path (e.g. /your-endpoint)")
    audit.add_argument("--routes", metavar="METHOD:PATH", action="append",
                       help="audit these routes instead of listing them (no admin key needed); repeatable")
    audit.add_argument("--origin", default="http://localhost:3000", help="the browser Origin (default %(default)s)")
    audit.add_argument("--token-env", metavar="VAR", help="environment variable holding a JWT sent as Bearer")
    audit.add_argument("--env-dir", default=".", help="where to look for .env.local/.env (default: here)")
    audit.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    audit.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


class CliError(Exception):
    pass


def _env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise CliError(f"environment variable {name} is not set or empty")
    return value


def resolve_connection(args: argparse.Namespace):
    from console.connection import Connection, InvalidConnection, normalize_url
    from console.sessions import ProfileError, Settings

    key = _env(args.admin_key_env) if args.admin_key_env else None
    try:
        if args.url:
            return Connection.create(args.url, site_url=args.site_url, admin_key=key)
        settings = Settings()
        name = args.profile or settings.load().default_profile
        if name:
            connection = settings.connection_for(settings.get_profile(name))
        else:
            from console.discovery import discover

            found = discover()
            if not found:
                raise CliError("no deployment: give --url or --profile (nothing discovered here)")
            connection = found[0].connection
        if key:
            connection = connection.with_credential(Connection.create(connection.url, admin_key=key).credential)
        if args.site_url:
            connection = dataclasses.replace(connection, site_url=normalize_url(args.site_url, what="HTTP-actions URL"))
        return connection
    except (InvalidConnection, ProfileError) as error:
        raise CliError(str(error)) from None


def _parse_routes(items: list[str] | None) -> list[tuple[str, str]] | None:
    if not items:
        return None
    routes = []
    for item in items:
        method, sep, path = item.partition(":")
        if not sep or not path.startswith("/"):
            raise CliError(f"--routes {item!r}: expected METHOD:/path")
        routes.append((method.upper(), path))
    return routes


async def _audit(args: argparse.Namespace):
    from console import cors_audit
    from console.client import DeploymentClient

    connection = resolve_connection(args)
    bearer = _env(args.token_env) if args.token_env else None
    async with DeploymentClient(connection, timeout=args.timeout) as client:
        return await cors_audit.run_audit(
            client, route=args.route, origin=args.origin, bearer=bearer, routes=_parse_routes(args.routes),
            env_dir=Path(args.env_dir), timeout=args.timeout,
        )


def main(argv: Sequence[str] | None = None) -> int:
    from console import cors_audit

    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command != "audit":
        parser.print_help()
        return USAGE_ERROR
    try:
        report = asyncio.run(_audit(args))
    except CliError as error:
        print(f"convex-console http: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print(cors_audit.format_report(report, color=sys.stdout.isatty()))
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
