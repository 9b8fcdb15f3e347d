"""The CORS audit against the demo (exactly its two planted mistakes), its checks, the domain
checks, `convex-console http audit`, and HTTP-action requests with bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from console import cors_audit, http_cli
from console.client import DeploymentClient, Unreachable
from console.connection import Connection

sys.path.insert(0, str(Path(__file__).parent / "peers"))


def connect(emulator, *, key: bool = True) -> Connection:
    return Connection.create(emulator.url, admin_key=emulator.admin_key if key else None, kind="emulator",
                             site_url=emulator.site_url)


@pytest.fixture
def demo(emulator_factory):
    return emulator_factory(seed=0)


async def test_demo_audit_finds_exactly_the_two_planted_mistakes(demo):
    async with DeploymentClient(connect(demo)) as client:
        report = await cors_audit.run_audit(client)
    verdicts = {(r.method, r.route): r.verdict for r in report.routes}
    assert verdicts == {
        ("POST", "/your-endpoint"): "ok",
        ("POST", "/authenticated-endpoint"): "ok",
        ("POST", "/uploadFile"): "ok",
        ("GET", "/health"): "ok",
        ("GET", "/files/*"): "ok",
        ("POST", "/messages"): "blocked",
        ("POST", "/legacy/echo"): "blocked",
    }
    assert report.exit_code == 1
    by_route = {r.route: r for r in report.routes}
    legacy = by_route["/legacy/echo"]
    assert legacy.options_routed is False
    assert legacy.probes[0].status == 404 and not legacy.probes[1].problems  # only the preflight fails
    assert legacy.fix.startswith("Add an OPTIONS route for /legacy/echo")
    assert "seed" not in legacy.fix.lower() and "workflow" not in legacy.fix.lower()  # no internal references
    messages = by_route["/messages"]
    assert messages.options_routed is True
    preflight, request, error = messages.probes
    assert not preflight.problems and not request.problems
    assert error.status == 400 and error.present == dict.fromkeys(cors_audit.SEED_HEADERS, False)
    assert "Pass headers: CORS_HEADERS on the 400 error response of POST /messages" in messages.fix
    good = by_route["/your-endpoint"]
    assert [p.status for p in good.probes] == [200, 200, 500]
    assert all(all(p.present.values()) for p in good.probes)
    text = cors_audit.format_report(report)
    assert "7 routes audited, 2 would fail in a browser" in text


async def test_one_route_audit(demo):
    async with DeploymentClient(connect(demo)) as client:
        report = await cors_audit.run_audit(client, route="/messages")
        assert [r.route for r in report.routes] == ["/messages"]
        missing = await cors_audit.run_audit(client, route="/nope")
    assert missing.error == "no HTTP route matches /nope" and missing.exit_code == 1


def probe(headers: dict, status: int = 200, kind: str = "preflight", method: str = "PUT") -> cors_audit.Probe:
    p = cors_audit.Probe(kind, method, "/x", status=status, headers={k.lower(): v for k, v in headers.items()})
    return p


def test_preflight_checks_follow_the_fetch_rules():
    origin = cors_audit.DEFAULT_ORIGIN
    wildcard = probe({"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "*",
                      "Access-Control-Allow-Headers": "*", "Vary": "Origin"})
    cors_audit.check_preflight(wildcard, "PUT", origin, "/x")
    assert wildcard.problems == ["Access-Control-Allow-Headers does not list Authorization"]
    simple = probe({"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Headers": "content-type, authorization"})
    cors_audit.check_preflight(simple, "POST", origin, "/x")  # POST needs no Allow-Methods entry
    assert simple.problems == [] and simple.notes == ["no Vary: Origin"]
    put = probe({"Access-Control-Allow-Origin": "https://other.example", "Access-Control-Allow-Methods": "GET, POST",
                 "Access-Control-Allow-Headers": "Content-Type, Authorization"}, status=204)
    cors_audit.check_preflight(put, "PUT", origin, "/x")
    assert put.problems == [f"the preflight's Access-Control-Allow-Origin does not allow {origin}",
                            "Access-Control-Allow-Methods does not list PUT"]


def test_domain_checks(tmp_path):
    assert "use .convex.site, i.e. https://happy-otter-123.convex.site/uploadFile" in cors_audit.check_request_url(
        "https://happy-otter-123.convex.cloud/uploadFile")
    assert cors_audit.check_request_url("https://happy-otter-123.convex.site/uploadFile") is None
    assert cors_audit.check_request_url("https://happy-otter-123.convex.cloud/api/query") is None
    local = Connection.create("http://127.0.0.1:3210", kind="local")
    assert "HTTP actions are at http://127.0.0.1:3211/x" in cors_audit.check_request_url("http://127.0.0.1:3210/x", local)
    assert cors_audit.check_request_url("http://127.0.0.1:3210/http/x", local) is None
    (tmp_path / ".env.local").write_text(
        "NEXT_PUBLIC_CONVEX_URL=https://happy-otter-123.convex.cloud\n"
        "NEXT_PUBLIC_CONVEX_SITE_URL=https://happy-otter-123.convex.cloud\n"
        "UPLOAD_URL=https://happy-otter-123.convex.cloud/uploadFile\n"
        "GOOD_SITE_URL=https://happy-otter-123.convex.site\n"
        "LOCAL_SITE_URL=http://127.0.0.1:3210\n"
    )
    problems = cors_audit.check_env_files(tmp_path, local)
    assert [(p.file, p.name) for p in problems] == [
        (".env.local", "NEXT_PUBLIC_CONVEX_SITE_URL"), (".env.local", "UPLOAD_URL"), (".env.local", "LOCAL_SITE_URL")]
    assert "use https://happy-otter-123.convex.site/uploadFile" in problems[1].message


def test_cli_audit_exit_codes(demo, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("CONVEX_CONSOLE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DEMO_ADMIN_KEY", demo.admin_key)
    base = ["audit", "--url", demo.url, "--site-url", demo.site_url, "--admin-key-env", "DEMO_ADMIN_KEY",
            "--env-dir", str(tmp_path)]
    assert http_cli.main(base) == 1
    out = capsys.readouterr().out
    assert "BLOCKED POST /legacy/echo" in out and "BLOCKED POST /messages" in out and admin_hidden(out, demo)
    assert http_cli.main(base + ["--route", "/your-endpoint"]) == 0
    capsys.readouterr()
    assert http_cli.main(base + ["--route", "/messages", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["routes"][0]["route"] == "/messages"
    no_key = ["audit", "--url", demo.url, "--site-url", demo.site_url, "--routes", "POST:/legacy/echo"]
    assert http_cli.main(no_key) == 1
    assert "no OPTIONS route for /legacy/echo" in capsys.readouterr().out
    assert http_cli.main(["audit", "--url", demo.url, "--admin-key-env", "UNSET_VAR_X"]) == 2
    assert "UNSET_VAR_X is not set" in capsys.readouterr().err


def admin_hidden(text: str, emulator) -> bool:
    return emulator.admin_key not in text


# --- requests to HTTP actions: bad input ----------------------------------------------------------------------


@pytest.fixture
def test_app(emulator_factory):
    return emulator_factory(app="http_app")


async def test_requests_report_redirects_binary_and_huge_bodies(test_app):
    async with DeploymentClient(connect(test_app)) as client:
        moved = await client.http_request("GET", "/moved")
        assert moved.status == 302 and moved.redirect == "/echo" and "redirect not followed" in moved.summary()
        binary = await client.http_request("GET", "/big", query={"size": "40"})
        text, note = binary.body_text()
        assert note.startswith("binary body (40 B, not UTF-8)") and text.startswith("00000000  ff ff")
        huge = await client.http_request("GET", "/big", query={"size": str(5 << 20)}, max_body=1000)
        assert huge.size == 5 << 20 and len(huge.body) == 1000 and huge.truncated
        assert "showing the first 1000 B of 5.0 MiB" in huge.body_text()[1]
        posted = await client.http_request("POST", "/echo", body=b'{"a": [1, 2]}',
                                           headers={"Content-Type": "application/json"}, bearer="tok")
        assert posted.body_text() == ('{\n  "a": [\n    1,\n    2\n  ]\n}', "JSON")
        assert ("Authorization", "Bearer tok") in posted.request_headers


async def test_requests_fail_clearly_when_unreachable_or_slow(test_app):
    from http_app.http import release

    async with DeploymentClient(connect(test_app)) as client:
        release.clear()
        with pytest.raises(Unreachable, match="timed out after 0.5 s waiting for an answer"):
            await client.http_request("GET", "/slow", timeout=0.5)
        release.set()
        with pytest.raises(Unreachable, match="connection refused"):
            await client.http_request("GET", "/x", base_url="http://127.0.0.1:9")
        with pytest.raises(Unreachable, match="not an http"):
            await client.http_request("GET", "/x", base_url="ftp://example.com")
