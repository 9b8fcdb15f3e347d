"""`convex-console token mint`: a token from the emulator's built-in development issuer.

    convex-console token mint --sub user_1 [--aud convex] [--ttl 1h] [--claim k=v ...]
        (--data-dir DIR [--issuer URL] | --url URL [--admin-key-env VAR]) [--json]

With a data dir the token is signed locally with that data dir's key (the issuer URL is the
one the emulator last announced, or `--issuer`); with a URL the running emulator mints it
through its admin endpoint. The token goes to stdout, alone, for `$(...)` and pipes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import httpx

DEFAULT_ADMIN_KEY_ENV = "CONVEX_SELF_HOSTED_ADMIN_KEY"
MINT_PATH = "/api/emulator/mint_token"


def _claim(text: str) -> tuple[str, Any]:
    key, eq, raw = text.partition("=")
    if not eq or not key:
        raise argparse.ArgumentTypeError(f"--claim expects key=value, got {text!r}")
    try:
        value = json.loads(raw)  # numbers, booleans, objects; anything else stays a string
    except ValueError:
        value = raw
    return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convex-console token mint",
        description="Mint a JWT from the emulator's built-in development issuer.",
    )
    parser.add_argument("--sub", required=True, help="subject (the user id)")
    parser.add_argument("--aud", action="append", help="audience (repeatable; default: convex)")
    parser.add_argument("--no-aud", action="store_true", help="omit the aud claim")
    parser.add_argument("--ttl", default="1h", help="lifetime: seconds or 90s, 30m, 1h, 2d")
    parser.add_argument("--claim", action="append", type=_claim, default=[],
                        help="extra claim key=value (value parsed as JSON when it is JSON)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data-dir", help="sign locally with this emulator data dir's key")
    source.add_argument("--url", "--deployment", dest="url", metavar="URL",
                        help="ask the running emulator at this URL (--deployment works too)")
    parser.add_argument("--admin-key-env", default=DEFAULT_ADMIN_KEY_ENV,
                        help=f"env var holding the admin key (default {DEFAULT_ADMIN_KEY_ENV})")
    parser.add_argument("--issuer", help="issuer URL override (with --data-dir)")
    parser.add_argument("--json", action="store_true", help="print {token, issuer, expiresAt}")
    return parser


def _audience(args: argparse.Namespace) -> Any:
    if args.no_aud:
        return None
    if not args.aud:
        return "convex"
    return args.aud[0] if len(args.aud) == 1 else list(args.aud)


def _mint_local(args: argparse.Namespace, aud: Any, claims: dict) -> dict:
    from console.emulator.auth import DevIssuer, parse_ttl

    issuer = DevIssuer.load_or_create(args.data_dir)
    if args.issuer:
        issuer.issuer_url = args.issuer.rstrip("/")
    ttl = parse_ttl(args.ttl)
    token = issuer.mint(args.sub, aud, ttl, claims)
    payload = json.loads(_segment(token))
    return {"token": token, "issuer": issuer.issuer_url, "expiresAt": payload["exp"]}


def _mint_remote(args: argparse.Namespace, aud: Any, claims: dict) -> dict:
    key = os.environ.get(args.admin_key_env)
    if not key:
        raise RuntimeError(f"Set the admin key in ${args.admin_key_env} (or use --admin-key-env)")
    body = {"sub": args.sub, "aud": aud, "ttl": args.ttl, "claims": claims}
    url = args.url.rstrip("/") + MINT_PATH
    try:
        response = httpx.post(url, json=body, headers={"Authorization": f"Convex {key}"},
                              timeout=10.0)
    except httpx.HTTPError as error:
        raise RuntimeError(f"Could not reach {args.url}: {error}") from None
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code != 200:
        message = data.get("message") if isinstance(data, dict) else None
        raise RuntimeError(f"{response.status_code}: {message or response.text[:200]}")
    return data


def _segment(token: str) -> bytes:
    import base64

    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    while argv and argv[0] in ("token", "mint"):
        argv.pop(0)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.data_dir and not args.url:
        parser.error("give --data-dir DIR (sign locally) or --url URL (ask the emulator)")
    claims = dict(args.claim)
    try:
        if args.data_dir:
            result = _mint_local(args, _audience(args), claims)
        else:
            result = _mint_remote(args, _audience(args), claims)
    except (RuntimeError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({k: result.get(k) for k in ("token", "issuer", "expiresAt")}))
    else:
        print(result["token"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
