"""The CORS audit of a deployment's HTTP actions, and the `.convex.site` domain checks (headless;
used by the HTTP screen and `convex-console http audit`).

For each routed (path, method) other than OPTIONS it sends what a browser sends:
1. the preflight: `OPTIONS` with `Origin`, `Access-Control-Request-Method`,
   `Access-Control-Request-Headers: Content-Type, Authorization`;
2. the real request (a small JSON body for POST/PUT/PATCH), with `Origin`;
3. a provoked error: the same with an empty body (bodyless methods: an invalid Bearer token);
and reports which of the seed's `CORS_HEADERS` each response carries, whether OPTIONS is
routed, whether a browser would block the call (fetch's CORS checks), and the fix in one line.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlsplit

SEED_HEADERS = (
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Vary",
)
DEFAULT_ORIGIN = "http://localhost:3000"
REQUESTED_HEADERS = "Content-Type, Authorization"
SAFELISTED_METHODS = ("GET", "HEAD", "POST")
SAMPLE_BODY = b'{"requiredField":"cors-audit"}'
BAD_TOKEN = "cors-audit.invalid.token"
PREFIX_SAMPLE = "cors-audit"
_CLOUD = re.compile(r"^(?P<name>[A-Za-z0-9-]+)(?P<region>\.[A-Za-z0-9-]+)?\.convex\.cloud$", re.I)


UNREACHABLE_EXIT = 2


def plural(count: int, noun: str) -> str:
    """`1 route`, `7 routes`, `0 variables`."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


@dataclass
class Probe:
    kind: str  # "preflight" | "request" | "error"
    method: str
    path: str
    status: int = 0
    present: dict[str, bool] = field(default_factory=dict)  # seed header -> present
    headers: dict[str, str] = field(default_factory=dict)  # lower-case name -> value
    problems: list[str] = field(default_factory=list)  # what makes a browser block it
    notes: list[str] = field(default_factory=list)  # missing but harmless (Vary)
    error: str | None = None  # no answer at all
    unreachable: bool = False  # the error was the deployment not answering (refused, DNS, timeout)
    elapsed: float = 0.0

    @property
    def blocked(self) -> bool:
        return bool(self.problems) or self.error is not None

    @property
    def label(self) -> str:
        return {"preflight": "preflight OPTIONS", "request": f"{self.method} request", "error": f"{self.method} error"}[self.kind]


@dataclass
class RouteAudit:
    route: str  # as apiSpec lists it: "/files/*" for a prefix
    method: str
    path: str  # the path requested
    options_routed: bool = True
    probes: list[Probe] = field(default_factory=list)
    fix: str = ""

    @property
    def blocked(self) -> bool:
        return any(p.blocked for p in self.probes)

    @property
    def problems(self) -> list[str]:
        found = []
        for probe in self.probes:
            found.extend(probe.problems)
            if probe.error:
                found.append(f"{probe.label}: {probe.error}")
        return found

    @property
    def verdict(self) -> str:
        if any(p.error for p in self.probes):
            return "unreachable"
        return "blocked" if self.blocked else "ok"


@dataclass
class EnvProblem:
    file: str
    name: str
    value: str
    message: str


@dataclass
class AuditReport:
    site_url: str
    origin: str
    routes: list[RouteAudit] = field(default_factory=list)
    env_problems: list[EnvProblem] = field(default_factory=list)
    error: str | None = None  # the routes could not be listed
    unreachable: str | None = None  # "Cannot reach URL: reason" when nothing could be audited

    @property
    def blocked(self) -> list[RouteAudit]:
        return [r for r in self.routes if r.blocked]

    @property
    def exit_code(self) -> int:
        """0 all routes work from a browser, 1 some would fail, 2 the deployment is unreachable."""
        if self.unreachable:
            return UNREACHABLE_EXIT
        return 1 if self.blocked or self.error else 0


# --- route selection -----------------------------------------------------------------------------


def http_routes(specs: Iterable[Any]) -> list[tuple[str, str]]:
    """(method, route path) of the HttpAction entries of apiSpec (FunctionSpec or dicts)."""
    routes = []
    for spec in specs:
        if isinstance(spec, dict):
            kind, method, path = spec.get("functionType"), spec.get("method"), spec.get("path")
        else:
            kind, method, path = spec.function_type, spec.method, spec.http_path
        if kind == "HttpAction" and method and path:
            routes.append((str(method).upper(), str(path)))
    return routes


def request_path(route: str) -> str:
    return route[:-1] + PREFIX_SAMPLE if route.endswith("*") else route


def audited(routes: list[tuple[str, str]], only: str | None = None) -> list[tuple[str, str, bool]]:
    """(method, route, options_routed) for each non-OPTIONS route (optionally one path)."""
    options = {path for method, path in routes if method == "OPTIONS"}
    chosen = []
    for method, path in routes:
        if method in ("OPTIONS", "HEAD"):
            continue
        if only and only not in (path, request_path(path)):
            continue
        chosen.append((method, path, path in options))
    return chosen


# --- checks (the fetch standard's CORS checks, reduced to what an audit can see) ------------------


def _present(headers: dict[str, str]) -> dict[str, bool]:
    return {name: name.lower() in headers for name in SEED_HEADERS}


def _origin_ok(headers: dict[str, str], origin: str) -> bool:
    value = headers.get("access-control-allow-origin", "").strip()
    return value == "*" or value == origin


def _listed(value: str, wanted: str) -> bool:
    items = {item.strip().lower() for item in value.split(",") if item.strip()}
    return wanted.lower() in items


def check_preflight(probe: Probe, method: str, origin: str, route: str) -> None:
    headers = probe.headers
    if probe.status == 404 and probe.headers.get("x-no-route") == "1":
        probe.problems.append(f"no OPTIONS route for {route}: the preflight gets 404 and the browser stops there")
        return
    if not 200 <= probe.status < 300:
        probe.problems.append(f"the preflight answered {probe.status}: a browser needs a 2xx")
    if not _origin_ok(headers, origin):
        probe.problems.append("the preflight has no Access-Control-Allow-Origin" if "access-control-allow-origin" not in headers
                              else f"the preflight's Access-Control-Allow-Origin does not allow {origin}")
    methods = headers.get("access-control-allow-methods", "")
    if method not in SAFELISTED_METHODS and not (methods.strip() == "*" or _listed(methods, method)):
        probe.problems.append(f"Access-Control-Allow-Methods does not list {method}")
    allowed = headers.get("access-control-allow-headers", "")
    for name in ("Content-Type", "Authorization"):
        wildcard = allowed.strip() == "*" and name != "Authorization"  # `*` never covers Authorization
        if not (wildcard or _listed(allowed, name)):
            probe.problems.append(f"Access-Control-Allow-Headers does not list {name}")
    if "vary" not in headers:
        probe.notes.append("no Vary: Origin")


def check_response(probe: Probe, origin: str) -> None:
    headers = probe.headers
    if not _origin_ok(headers, origin):
        what = "has no Access-Control-Allow-Origin" if "access-control-allow-origin" not in headers else f"does not allow {origin}"
        probe.problems.append(f"the {probe.status} response to {probe.method} {probe.path} {what}: the browser hides it")
    if "vary" not in headers:
        probe.notes.append("no Vary: Origin")


def fix_for(audit: RouteAudit) -> str:
    if not audit.probes:
        return ""
    if any(p.error for p in audit.probes):
        return "Check that the site URL is right and the deployment is running."
    preflight = audit.probes[0]
    if not audit.options_routed or any("no OPTIONS route" in p for p in preflight.problems):
        return f"Add an OPTIONS route for {audit.route} that returns CORS_HEADERS with status 200."
    if preflight.problems:
        return "Answer the preflight with the full CORS_HEADERS constant: " + preflight.problems[0] + "."
    failing = [p for p in audit.probes[1:] if p.problems]
    if failing:
        statuses = sorted({str(p.status) for p in failing})
        which = "error" if all(p.status >= 400 for p in failing) else "success"
        return (f"Pass headers: CORS_HEADERS on the {'/'.join(statuses)} {which} response of "
                f"{audit.method} {audit.route} too (every return path, including catch blocks).")
    if any(p.notes for p in audit.probes):
        return "Optional: add Vary: Origin to CORS_HEADERS (caches then keep one answer per origin)."
    return ""


# --- running it -------------------------------------------------------------------------------------


def _no_route_marker(exchange) -> dict[str, str]:
    headers = {k.lower(): v for k, v in exchange.headers}
    if exchange.is_no_route:
        headers["x-no-route"] = "1"
    return headers


async def _probe(client, kind: str, method: str, path: str, *, origin: str, bearer: str | None,
                 timeout: float, body: bytes | None = None, headers: list | None = None) -> Probe:
    from console.client import ClientError, Unreachable

    probe = Probe(kind, method, path)
    send_method = "OPTIONS" if kind == "preflight" else method
    sent = [("Origin", origin)] + list(headers or [])
    try:
        exchange = await client.http_request(send_method, path, headers=sent, body=body, bearer=bearer,
                                             timeout=timeout, max_body=4096)
    except ClientError as error:
        probe.error = str(error)
        probe.unreachable = isinstance(error, Unreachable)
        return probe
    probe.status, probe.elapsed = exchange.status, exchange.elapsed
    probe.headers = _no_route_marker(exchange)
    probe.present = _present(probe.headers)
    return probe


async def audit_route(client, method: str, route: str, options_routed: bool, *, origin: str = DEFAULT_ORIGIN,
                      bearer: str | None = None, sample: bytes | None = None, timeout: float = 10.0) -> RouteAudit:
    path = request_path(route)
    result = RouteAudit(route=route, method=method, path=path, options_routed=options_routed)
    preflight = await _probe(client, "preflight", method, path, origin=origin, bearer=None, timeout=timeout,
                             headers=[("Access-Control-Request-Method", method),
                                      ("Access-Control-Request-Headers", REQUESTED_HEADERS)])
    if preflight.error is None:
        check_preflight(preflight, method, origin, route)
        result.options_routed = preflight.headers.get("x-no-route") != "1"
    result.probes.append(preflight)
    with_body = method in ("POST", "PUT", "PATCH")
    json_type = [("Content-Type", "application/json")] if with_body else []
    request = await _probe(client, "request", method, path, origin=origin, bearer=bearer, timeout=timeout,
                           body=(sample if sample is not None else SAMPLE_BODY) if with_body else None, headers=json_type)
    error = await _probe(client, "error", method, path, origin=origin, bearer=None if with_body else BAD_TOKEN,
                         timeout=timeout, body=b"" if with_body else None, headers=json_type)
    for probe in (request, error):
        if probe.error is None:
            check_response(probe, origin)
        result.probes.append(probe)
    result.fix = fix_for(result)
    return result


async def run_audit(client, *, route: str | None = None, origin: str = DEFAULT_ORIGIN, bearer: str | None = None,
                    routes: list[tuple[str, str]] | None = None, samples: dict[str, bytes] | None = None,
                    env_dir: str | Path | None = None, timeout: float = 10.0, concurrency: int = 4) -> AuditReport:
    """Audit every HTTP route of the deployment (or `route`, a path as listed or requested).
    `routes` ([(method, path)]) skips apiSpec (no admin key needed)."""
    from console.client import ClientError, Unreachable

    report = AuditReport(site_url=client.connection.site_url, origin=origin)
    if routes is None:
        try:
            routes = http_routes(await client.api_spec())
        except Unreachable as error:
            report.unreachable = str(error)  # "Cannot reach URL: reason"
            return report
        except ClientError as error:
            report.error = f"could not list the HTTP routes: {error}"
            routes = []
    chosen = audited(routes, route)
    if route and not chosen and not report.error:
        report.error = f"no HTTP route matches {route}"
    gate = asyncio.Semaphore(concurrency)

    async def one(method: str, path: str, has_options: bool) -> RouteAudit:
        async with gate:
            return await audit_route(client, method, path, has_options, origin=origin, bearer=bearer,
                                     sample=(samples or {}).get(f"{method} {path}"), timeout=timeout)

    report.routes = list(await asyncio.gather(*(one(*item) for item in chosen)))
    probes = [probe for audit in report.routes for probe in audit.probes]
    if probes and all(probe.unreachable for probe in probes):
        report.unreachable = probes[0].error
    if env_dir is not None:
        report.env_problems = check_env_files(env_dir, client.connection)
    return report


# --- the domain checks ----------------------------------------------------------------------------------


def check_request_url(url: str, connection: Any = None) -> str | None:
    """Why a request for an HTTP action at `url` would miss (None when it looks right)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    match = _CLOUD.match(host)
    path = parts.path or "/"
    if match:
        if path.startswith("/api/"):
            return None
        site = f"{parts.scheme}://{match['name']}{match['region'] or ''}.convex.site{path}"
        return (f"{host} serves the Convex API, not HTTP actions (it answers 404): use .convex.site, "
                f"i.e. {site}")
    if connection is not None and connection.url != connection.site_url:
        base = connection.url.rstrip("/")
        if url.startswith(base + "/") or url == base:
            if path.startswith("/http/") or path.startswith("/api/"):
                return None
            return (f"{base} is the deployment (API) URL; HTTP actions are at {connection.site_url}{path} "
                    f"(or {base}/http{path})")
    return None


_HTTP_NAME = re.compile(r"SITE|HTTP|ENDPOINT|WEBHOOK|UPLOAD|CALLBACK", re.I)
_CLIENT_URL_NAMES = {"CONVEX_URL", "PUBLIC_CONVEX_URL", "NEXT_PUBLIC_CONVEX_URL", "VITE_CONVEX_URL",
                     "REACT_APP_CONVEX_URL", "EXPO_PUBLIC_CONVEX_URL", "CONVEX_SELF_HOSTED_URL"}


def check_env_values(variables: dict[str, str], file: str, connection: Any = None) -> list[EnvProblem]:
    problems = []
    for name, value in variables.items():
        url = value.strip()
        if not url.lower().startswith(("http://", "https://")):
            continue
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        cloud = _CLOUD.match(host)
        site_named = bool(_HTTP_NAME.search(name)) and name not in _CLIENT_URL_NAMES
        has_path = parts.path not in ("", "/") and not parts.path.startswith("/api/")
        if cloud and (site_named or has_path):
            fixed = url.replace(".convex.cloud", ".convex.site", 1)
            problems.append(EnvProblem(file, name, value,
                                       f"{name} points HTTP clients at .convex.cloud (404 for HTTP actions): use {fixed}"))
            continue
        if connection is not None and connection.url != connection.site_url and site_named:
            if url.rstrip("/") == connection.url.rstrip("/"):
                problems.append(EnvProblem(file, name, value,
                                           f"{name} is the deployment (API) URL; HTTP actions are at {connection.site_url}"))
    return problems


def check_env_files(directory: str | Path, connection: Any = None) -> list[EnvProblem]:
    """Flag `.env.local` / `.env` variables that send HTTP-action requests to `.convex.cloud`."""
    from console.discovery import parse_dotenv

    problems: list[EnvProblem] = []
    for name in (".env.local", ".env"):
        path = Path(directory) / name
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        problems.extend(check_env_values(parse_dotenv(text), name, connection))
    return problems


# --- text output (the CLI) ------------------------------------------------------------------------------


def format_report(report: AuditReport, *, color: bool = False) -> str:
    def paint(text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if color else text

    lines = [f"CORS audit of {report.site_url} (Origin: {report.origin})"]
    if report.unreachable:
        lines.append(paint(f"Nothing audited: {report.unreachable}.", "31"))
        lines.append("Check the URL and that the deployment is running, then try again.")
        return "\n".join(lines)
    if report.error:
        lines.append(paint(f"error: {report.error}", "31"))
    for audit in report.routes:
        mark = {"ok": paint("ok     ", "32"), "blocked": paint("BLOCKED", "31"), "unreachable": paint("NO ANSWER", "31")}[audit.verdict]
        lines.append(f"{mark} {audit.method} {audit.route}" + ("" if audit.options_routed else "  (no OPTIONS route)"))
        for probe in audit.probes:
            if probe.error:
                lines.append(f"    {probe.label:<20} {probe.error}")
                continue
            have = " ".join(("+" if probe.present.get(h) else "-") + short(h) for h in SEED_HEADERS)
            lines.append(f"    {probe.label:<20} {probe.status:<4} {have}")
            for problem in probe.problems:
                lines.append(paint(f"      ✗ {problem}", "31"))
        if audit.fix:
            lines.append(f"    fix: {audit.fix}")
    for problem in report.env_problems:
        lines.append(paint(f"{problem.file}: {problem.message}", "33"))
    total, bad = len(report.routes), len(report.blocked)
    env = f", {plural(len(report.env_problems), '.env problem')}" if report.env_problems else ""
    lines.append(f"{plural(total, 'route')} audited, {bad} would fail in a browser{env}")
    return "\n".join(lines)


def short(header: str) -> str:
    return {"Access-Control-Allow-Origin": "Allow-Origin", "Access-Control-Allow-Methods": "Allow-Methods",
            "Access-Control-Allow-Headers": "Allow-Headers", "Vary": "Vary"}[header]
