"""`convex-console token decode|verify ...`: the token doctor without the TUI.

Exit codes: 0 the token is valid, 1 it is not (the report says why), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TextIO

from console import tokens as T

EXIT_VALID, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
ADMIN_KEY_ENV_DEFAULTS = ("CONVEX_ADMIN_KEY", "CONVEX_SELF_HOSTED_ADMIN_KEY")
_MARKS = {T.ERROR: "✗", T.WARNING: "!", T.INFO: "i"}


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would exit; we return 2 instead
        raise UsageError(f"{self.prog}: {message}")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="convex-console token", description="Decode, verify and diagnose a JWT as Convex would.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    decode = commands.add_parser("decode", help="show header, claims, times and the identity (no signature check)")
    _add_common(decode)

    verify = commands.add_parser("verify", help="check the signature and match the deployment's auth providers")
    _add_common(verify)
    verify.add_argument("--url", "--deployment", dest="deployment", metavar="URL",
                        help="deployment URL whose auth providers to match (--deployment: the older spelling)")
    verify.add_argument("--admin-key-env", metavar="VAR",
                        help="env var holding the admin key (default: CONVEX_ADMIN_KEY, CONVEX_SELF_HOSTED_ADMIN_KEY)")
    keys = verify.add_mutually_exclusive_group()
    keys.add_argument("--jwks", metavar="URL", help="JWKS URL (https:// or data:) instead of OIDC discovery")
    keys.add_argument("--key", metavar="FILE", help="PEM public key or certificate file")
    keys.add_argument("--secret-env", metavar="VAR", help="env var holding an HS256/384/512 secret")
    verify.add_argument("--timeout", type=float, default=T.DEFAULT_TIMEOUT, help="network timeout in seconds")

    commands.add_parser("mint", help="mint a development token from the emulator's issuer (see `token mint --help`)")
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("token", metavar="TOKEN|-", help="the JWT, or - to read it from stdin")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _read_token(arg: str, stdin: TextIO) -> str:
    return stdin.read() if arg == "-" else arg


def _admin_key(var: str | None) -> str:
    names = (var,) if var else ADMIN_KEY_ENV_DEFAULTS
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    raise UsageError(f"--url needs an admin key: set {' or '.join(names)} (or pass --admin-key-env VAR)")


def _key_source(args: argparse.Namespace) -> T.KeySource | None:
    if args.jwks:
        return T.KeySource(jwks_url=args.jwks)
    if args.key:
        try:
            with open(args.key, encoding="utf-8") as handle:
                return T.KeySource(pem=handle.read())
        except OSError as error:
            raise UsageError(f"cannot read --key {args.key}: {error.strerror}") from None
    if args.secret_env:
        secret = os.environ.get(args.secret_env)
        if not secret:
            raise UsageError(f"--secret-env {args.secret_env}: that environment variable is not set")
        return T.KeySource(secret=secret)
    return None


# ---------------------------------------------------------------------------
# Rendering


def _json_block(value: object, indent: str = "  ") -> list[str]:
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    return [indent + line for line in text.splitlines()]


def _problem_lines(problems: list[T.Problem], indent: str = "  ") -> list[str]:
    return [f"{indent}{_MARKS.get(p.severity, '-')} {p.message}" for p in problems]


def format_report(report: T.TokenReport) -> str:
    lines = [f"Token     {T.mask_token(report.raw.strip())} ({len(report.raw.strip())} chars)"]
    if report.decoded is None:
        error = report.decode_error
        lines += [f"Result    INVALID: cannot decode ({error.code})", f"  ✗ {error.message}"]
        return "\n".join(lines)
    decoded = report.decoded
    status = report.status.upper()
    note = T.leeway_note(report.problems + (report.match.chosen.problems if report.match and report.match.chosen else []))
    if note and report.status != T.STATUS_VALID:
        status += f" ({note.rstrip('.')})"
    lines.append(f"Status    {status}")
    lines += ["Header"] + _json_block(decoded.header)
    lines += ["Claims"] + _json_block(decoded.claims)
    if report.times:
        lines.append("Times")
        for claim in report.times:
            lines.append(
                f"  {claim.name:<4} {claim.utc:%Y-%m-%d %H:%M:%S} UTC   local {claim.local:%Y-%m-%d %H:%M:%S %Z}"
                f"   {claim.relative}"
            )
    if report.problems:
        lines += ["Findings"] + _problem_lines(report.problems)
    lines += _verification_lines(report.verification)
    lines += _match_lines(report.match)
    if report.identity is not None:
        lines += [f"UserIdentity ({report.identity_kind})"] + _json_block(report.identity)
    lines.append(_result_line(report))
    return "\n".join(lines)


def _verification_lines(result: T.VerifyResult | None) -> list[str]:
    if result is None:
        return []
    if result.ok:
        kid = f" kid '{result.kid}'" if result.kid else ""
        head = f"Signature OK ({result.algorithm}{kid}, key from {result.source})"
    else:
        head = f"Signature NOT VERIFIED (key from {result.source})"
    return [head] + _problem_lines(result.problems)


def _match_lines(match: T.MatchReport | None) -> list[str]:
    if match is None:
        return []
    lines = ["Providers"]
    for check in match.checks:
        state = "accepts" if check.accepted else ("matches iss/aud, rejects" if check.selected else "no match")
        lines.append(f"  #{check.index + 1} {check.provider.label}: {state}")
        lines += _problem_lines(check.problems, "      ")
    lines.append(f"  → {match.summary}")
    return lines


def _result_line(report: T.TokenReport) -> str:
    if report.valid:
        return "Result    VALID"
    errors = report.errors
    if errors:
        return f"Result    INVALID: {errors[0].message}"
    return f"Result    INVALID: the token is {report.status}"


def report_as_json(report: T.TokenReport) -> dict:
    def problems(items):
        return [{"code": p.code, "severity": p.severity, "message": p.message} for p in items]

    data: dict = {"valid": report.valid, "token": T.mask_token(report.raw.strip())}
    if report.decoded is None:
        data["error"] = {"code": report.decode_error.code, "message": report.decode_error.message}
        return data
    data.update(
        status=report.status, header=report.decoded.header, claims=report.decoded.claims,
        times=[{"claim": t.name, "utc": t.utc.isoformat(), "local": t.local.isoformat(), "relative": t.relative}
               for t in report.times],
        problems=problems(report.problems), identity=report.identity, identityKind=report.identity_kind,
    )
    if report.verification is not None:
        v = report.verification
        data["verification"] = {"ok": v.ok, "source": v.source, "jwksUrl": v.jwks_url, "kid": v.kid,
                                "algorithm": v.algorithm, "problems": problems(v.problems)}
    if report.match is not None:
        data["providers"] = {
            "accepted": report.match.accepted, "summary": report.match.summary,
            "checks": [{"provider": c.provider.label, "selected": c.selected, "accepted": c.accepted,
                        "problems": problems(c.problems)} for c in report.match.checks],
        }
    return data


# ---------------------------------------------------------------------------


def _run(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    token = _read_token(args.token, stdin)
    if args.command == "decode":
        report = T.diagnose(token, verify=False)
    else:
        keys = _key_source(args)
        providers = None
        if args.deployment:
            import httpx

            admin_key = _admin_key(args.admin_key_env)
            try:
                providers = T.fetch_auth_providers(args.deployment, admin_key, timeout=args.timeout)
            except (ValueError, OSError, httpx.HTTPError) as error:
                print(f"Cannot list the auth providers of {args.deployment}: {error}", file=stdout)
                return EXIT_INVALID
        report = T.diagnose(token, providers=providers, keys=keys, timeout=args.timeout)
    if args.json:
        print(json.dumps(report_as_json(report), indent=2, ensure_ascii=False, default=str), file=stdout)
    else:
        print(format_report(report), file=stdout)
    return EXIT_VALID if report.valid else EXIT_INVALID


def _delegate_mint(argv: list[str], stderr: TextIO) -> int:
    """`token mint` belongs to console.token_mint (the emulator's development issuer)."""
    try:
        from console import token_mint
    except ImportError:
        print("error: token mint needs the emulator's issuer; see `convex-console token mint --help`", file=stderr)
        return EXIT_USAGE
    try:
        return token_mint.main(argv) or 0
    except SystemExit as exit_:  # argparse usage errors and --help
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else EXIT_USAGE)


def main(argv: list[str] | None = None, *, stdin: TextIO | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["token"]:
        argv = argv[1:]
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    if argv[:1] == ["mint"]:
        return _delegate_mint(argv[1:], stderr)
    try:
        args = _build_parser().parse_args(argv)
        return _run(args, stdin, stdout)
    except UsageError as error:
        print(f"error: {error}", file=stderr)
        return EXIT_USAGE
    except SystemExit as exit_:  # --help
        return EXIT_VALID if exit_.code in (0, None) else EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
