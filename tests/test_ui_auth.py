"""Pilot tests of the Auth screen against a real emulator and its built-in development issuer."""

from __future__ import annotations

import io
import json
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from textual import events
from textual.widgets import OptionList, TextArea

from console import tokens as T
from console.sessions import Settings
from screens.app import ConsoleApp
from screens.auth import AuthScreen, TokenHistory, read_token_file
from screens.widgets.token_report import TokenReportView
from ui_support import connect, until

SIZE = (160, 45)


@pytest.fixture(autouse=True)
def private_config(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVEX_CONSOLE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("CONVEX_CONSOLE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "config"


def mint(emulator, sub="user_1", **body) -> str:
    """A token from the emulator's built-in issuer, through its admin endpoint."""
    response = httpx.post(emulator.url + "/api/emulator/mint_token", json={"sub": sub, **body},
                          headers={"Authorization": f"Convex {emulator.admin_key}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["token"]


async def open_auth(pilot, app) -> AuthScreen:
    await until(pilot, lambda: app.current_mode == "data")
    await pilot.press("5")
    await until(pilot, lambda: isinstance(app.screen, AuthScreen))
    screen = app.screen
    await until(pilot, lambda: screen.providers is not None or "listing" not in screen.providers_note)
    return screen


async def paste(pilot, screen: AuthScreen, text: str) -> None:
    area = screen.query_one("#auth-token", TextArea)
    area.focus()
    screen.post_message(events.Paste(text))  # as the terminal does: the screen forwards it to the focus
    await until(pilot, lambda: screen.token == text.strip() and screen.report is not None
                and screen.report.raw == text.strip())


def shown(screen: AuthScreen) -> str:
    """The report pane as plain text."""
    from rich.console import Console

    view = screen.query_one("#auth-report", TokenReportView)
    console = Console(width=100, record=True, color_system=None, file=io.StringIO())
    console.print(view.shown)
    return console.export_text()


async def with_providers(pilot, screen: AuthScreen, emulator) -> None:
    """The deployment's providers, listed over HTTP by `_system/frontend/listAuthProviders`."""
    await until(pilot, lambda: screen.providers is not None)
    assert screen.providers and screen.providers[0].application_id == "convex"


async def test_providers_are_listed_over_http(emulator):
    app = ConsoleApp(connect(emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_auth(pilot, app)
        await until(pilot, lambda: screen.providers is not None)
        assert [p.kind for p in screen.providers] == ["oidc"]
        assert screen.providers[0].issuer.endswith("/emulator-auth")


async def test_minted_token_is_valid_matched_and_verified(emulator):
    token = mint(emulator, claims={"name": "Ada Lovelace", "email": "ada@example.com", "team": "core"})
    app = ConsoleApp(connect(emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_auth(pilot, app)
        await paste(pilot, screen, token)
        report = screen.report
        assert report.decoded is not None and report.status == T.STATUS_VALID
        text = shown(screen)
        assert " VALID " in text and "expires in 59 min" in text
        assert '"sub": "user_1"' in text and "UTC" in text
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen.report.verification is not None and not screen.verifying)
        assert screen.report.verification.ok, screen.report.verification.problems
        assert "OIDC discovery" in screen.report.verification.source
        text = shown(screen)
        assert "✓ Signature OK (RS256" in text
        identity = screen.report.identity
        assert identity["subject"] == "user_1" and identity["tokenIdentifier"].endswith("/emulator-auth|user_1")
        assert "iat" not in identity and "aud" not in identity and identity.get("team") == "core"
        assert '"tokenIdentifier"' in text
        history = screen.query_one("#auth-history", OptionList)
        assert history.option_count == 1
        entry = str(history.get_option_at_index(0).prompt)
        assert T.mask_token(token) in entry and token not in entry and "user_1" in entry
        # a pasted key: the issuer's JWKS as JSON, then another key with the same kid
        jwks = httpx.get(emulator.url + "/emulator-auth/.well-known/jwks.json", timeout=10).json()
        key_box = screen.query_one("#auth-key", TextArea)
        key_box.load_text(json.dumps(jwks))
        await until(pilot, lambda: screen.key_source is not None and screen.report.verification is None)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen.report.verification is not None and not screen.verifying)
        assert screen.report.verification.ok and screen.report.verification.source == "data: URL JWKS"
        impostor = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(
            rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()))
        key_box.load_text(json.dumps({**impostor, "kid": screen.report.decoded.kid, "alg": "RS256"}))
        await until(pilot, lambda: screen.report.verification is None)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen.report.verification is not None and not screen.verifying)
        assert screen.report.verification.error.code == "signature_mismatch"
        assert "Signature mismatch" in shown(screen)
        await with_providers(pilot, screen, emulator)
        key_box.load_text("")
        await until(pilot, lambda: screen.key_source is None)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen.report.verification is not None and not screen.verifying)
        assert screen.report.match.accepted and screen.report.valid
        assert "Accepted by provider #1" in shown(screen)


async def test_garbage_and_bad_tokens_get_a_diagnosis(emulator):
    app = ConsoleApp(connect(emulator), "test", None)
    good = mint(emulator)
    header, payload, _signature = good.split(".")
    cases = {
        "garbage": "not_a_jwt",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0": "two_parts",
        "x" * (T.MAX_TOKEN_BYTES + 10): "too_large",
        header + "." + payload[:-3] + "@@@." + "c2ln": "not_base64url",
        header[:-2] + "." + payload + ".c2ln": "truncated",
    }
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_auth(pilot, app)
        for text, code in cases.items():
            await pilot.press("ctrl+n")
            await paste(pilot, screen, text)
            assert screen.report.decode_error is not None and screen.report.decode_error.code == code, text[:40]
            rendered = shown(screen)
            assert " INVALID " in rendered and screen.report.decode_error.message[:40] in rendered.replace("\n", " ")
            await pilot.press("ctrl+r", "ctrl+t", "ctrl+g")  # nothing to verify or use: no crash, no state
            assert getattr(app, "bearer_token", None) is None and getattr(app, "acting_identity", None) is None
        # alg none: decodable, refused
        import base64
        import json

        def b64(value):
            return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

        await pilot.press("ctrl+n")
        await paste(pilot, screen, b64({"alg": "none"}) + "." + payload + ".")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen.report.verification is not None)
        assert screen.report.verification.error.code == "alg_none" and not screen.report.valid
        assert "unsigned" in shown(screen)
        # HS256 with no secret, then with a wrong key text
        await pilot.press("ctrl+n")
        await paste(pilot, screen, b64({"alg": "HS256", "typ": "JWT"}) + "." + payload + ".c2lnbmF0dXJl")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen.report.verification is not None)
        assert screen.report.verification.error.code == "hs_no_secret"
        screen.query_one("#auth-key", TextArea).load_text("/no/such/key.pem")
        await until(pilot, lambda: bool(screen.key_error))
        assert "No such file" in screen.key_error
        # a JWKS URL that is unreachable
        screen.query_one("#auth-key", TextArea).load_text("http://127.0.0.1:9/jwks.json")
        await pilot.press("ctrl+n")
        await paste(pilot, screen, good)
        await until(pilot, lambda: not screen.key_error)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen.report.verification is not None and not screen.verifying)
        assert screen.report.verification.error.code == "jwks_unreachable"
        assert "unreachable" in shown(screen)
        screen.query_one("#auth-key", TextArea).load_text("data:application/json,not%20json")
        await until(pilot, lambda: screen.report.verification is None)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen.report.verification is not None and not screen.verifying)
        assert screen.report.verification.error.code == "jwks_not_json"
        assert "is not JSON" in shown(screen)


async def test_expired_token(emulator):
    now = time.time()
    token = mint(emulator, claims={"iat": int(now - 3 * 3600), "exp": int(now - 2 * 3600)})
    app = ConsoleApp(connect(emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_auth(pilot, app)
        await paste(pilot, screen, token)
        assert screen.report.status == T.STATUS_EXPIRED and not screen.report.valid
        text = shown(screen)
        assert " EXPIRED " in text and "expired 2 h ago" in text
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen.report.verification is not None and not screen.verifying)
        assert screen.report.verification.ok  # the signature is fine; the time is not
        await with_providers(pilot, screen, emulator)
        assert not screen.report.match.accepted
        assert "expired" in [p.code for p in screen.report.match.chosen.problems]


async def test_use_token_and_act_as_user_then_call_functions(emulator):
    token = mint(emulator, sub="user_42", claims={"name": "Grace"})
    app = ConsoleApp(connect(emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_auth(pilot, app)
        await paste(pilot, screen, "Bearer " + token)
        await pilot.press("ctrl+t")
        assert app.bearer_token == token and app.acting_identity is None
        assert "In use for function calls" in shown(screen)
        viewer = await app.client.with_token(app.bearer_token).query("users:viewer")
        assert viewer["subject"] == "user_42" and viewer["name"] == "Grace"
        assert viewer["tokenIdentifier"] == screen.report.identity["tokenIdentifier"]
        history = screen.query_one("#auth-history", OptionList)
        assert str(history.get_option_at_index(0).prompt).startswith("● ")
        await pilot.press("ctrl+g")
        assert app.acting_identity == screen.report.identity and app.bearer_token is None
        acting = await app.client.with_identity(app.acting_identity).query("users:viewer")
        assert acting["subject"] == "user_42" and acting["tokenIdentifier"] == viewer["tokenIdentifier"]
        await pilot.press("ctrl+g")
        assert app.acting_identity is None
        # f3 brings back the token in use
        await pilot.press("ctrl+t")
        await pilot.press("ctrl+n")
        assert screen.token == ""
        await pilot.press("f3")
        assert screen.token == token


async def test_history_is_per_deployment_and_loads_from_file(emulator, tmp_path):
    settings = Settings(tmp_path / "config")
    token = mint(emulator, sub="from_file")
    token_file = tmp_path / "token.json"
    token_file.write_text('{"token": "%s", "issuer": "x"}\n' % token)
    assert read_token_file(str(token_file)) == token
    with pytest.raises(ValueError, match="Cannot read"):
        read_token_file(str(tmp_path / "missing.txt"))
    other = TokenHistory("some-other-deployment", settings.history)
    other.add("eyJother.token.x", "other", time.time())
    app = ConsoleApp(connect(emulator), "test", settings)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_auth(pilot, app)
        history = screen.query_one("#auth-history", OptionList)
        assert history.option_count == 0  # the other deployment's token is not listed
        await pilot.press("ctrl+f")
        await until(pilot, lambda: app.screen.__class__.__name__ == "PathModal")
        app.screen.query_one("#auth-path").value = str(token_file)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, AuthScreen) and screen.token == token)
        await until(pilot, lambda: history.option_count == 1)
        assert screen.report.decoded.subject == "from_file"
        await pilot.press("ctrl+n")
        await pilot.press("f2")
        await pilot.press("enter")
        await until(pilot, lambda: screen.token == token)
    assert [entry.token for entry in settings.history.tokens()].count(token) == 1


async def test_clipboard_without_a_system_clipboard_says_so(emulator, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    app = ConsoleApp(connect(emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_auth(pilot, app)
        await pilot.press("ctrl+l")
        await until(pilot, lambda: any("cannot read the system clipboard" in n.message for n in app._notifications))
        assert screen.token == ""
        app.copy_to_clipboard(mint(emulator, sub="clip"))  # the console's own clipboard is a fallback
        await pilot.press("ctrl+l")
        await until(pilot, lambda: screen.report is not None and screen.report.decoded is not None)
        assert screen.report.decoded.subject == "clip"


def notes(app, severity: str) -> str:
    return "\n".join(f"{n.title}: {n.message}" for n in app._notifications if n.severity == severity)


async def test_use_token_and_act_as_say_why_a_token_is_refused(emulator):
    from console.client import ApiError

    now = time.time()
    expired = mint(emulator, sub="late", claims={"iat": int(now - 3 * 3600), "exp": int(now - 2 * 3600)})
    stranger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger = jwt.encode({"iss": "https://nobody.example.com", "sub": "x", "aud": "convex", "iat": int(now),
                           "exp": int(now + 3600)}, stranger_key, algorithm="RS256", headers={"kid": "k1"})
    app = ConsoleApp(connect(emulator), "test", None)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_auth(pilot, app)
        await with_providers(pilot, screen, emulator)
        # undecodable: both keys answer with the reason and change nothing
        await paste(pilot, screen, "not_a_jwt")
        await pilot.press("ctrl+t", "ctrl+g")
        await until(pilot, lambda: notes(app, "error").count("cannot be decoded") == 2)
        assert app.bearer_token is None and app.acting_identity is None
        # signed by nobody the deployment knows: used on purpose, with the reason
        app.clear_notifications()
        await pilot.press("ctrl+n")
        await paste(pilot, screen, stranger)
        await pilot.press("ctrl+t")
        await until(pilot, lambda: "not matched by any auth provider" in notes(app, "warning"))
        assert app.bearer_token == stranger and "expect 401" in notes(app, "warning")
        # expired: used anyway, and Convex answers 401 as warned
        app.clear_notifications()
        await pilot.press("ctrl+n")
        await paste(pilot, screen, expired)
        await pilot.press("ctrl+t")
        await until(pilot, lambda: "expired" in notes(app, "warning"))
        assert app.bearer_token == expired and "Warning" in notes(app, "warning")
        with pytest.raises(ApiError) as refused:
            await app.client.with_token(app.bearer_token).query("users:viewer")
        assert refused.value.status == 401
        # acting as its user: admin key + identity skips verification, and the warning says so
        app.clear_notifications()
        await pilot.press("ctrl+g")
        await until(pilot, lambda: "skips verification" in notes(app, "warning"))
        assert "expired" in notes(app, "warning") and app.bearer_token is None
        assert app.acting_identity == screen.report.identity
        acting = await app.client.with_identity(app.acting_identity).query("users:viewer")
        assert acting["subject"] == "late"
        # a good token: no warning
        app.clear_notifications()
        await pilot.press("ctrl+n")
        await paste(pilot, screen, mint(emulator, sub="fine"))
        await pilot.press("ctrl+t")
        await until(pilot, lambda: any(n.title == "Using this token" for n in app._notifications))
        assert not notes(app, "warning")


from hypothesis import given, settings as hypothesis_settings, strategies as st  # noqa: E402

from screens.widgets.token_report import ReportContext, render_report  # noqa: E402

PROVIDERS = T.parse_providers([{"domain": "https://issuer.example", "applicationID": "convex"},
                               {"type": "customJwt", "issuer": "https://i", "jwks": "data:,{}", "algorithm": '"ES256"'}])


def _segment(value) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


claims_strategy = st.dictionaries(
    st.sampled_from(["iss", "sub", "aud", "exp", "nbf", "iat", "name", "address", "updated_at", "x"]),
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=8),
              st.lists(st.text(max_size=4), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)),
    max_size=7)


@hypothesis_settings(max_examples=150, deadline=None)
@given(st.one_of(
    st.text(max_size=120),
    st.tuples(st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit"]), st.one_of(st.text(max_size=6), st.integers()),
                              max_size=4), claims_strategy).map(lambda p: f"{_segment(p[0])}.{_segment(p[1])}.c2ln"),
))
def test_any_text_renders_a_report(text):
    """Whatever is pasted, the doctor produces a report and the pane renders it."""
    from rich.console import Console

    report = T.diagnose(text, providers=PROVIDERS, verify=False, now=1_800_000_000.0)
    console = Console(width=90, file=io.StringIO(), color_system=None)
    console.print(render_report(report, 1_800_000_000.0, ReportContext()))
    assert report.decoded is not None or report.decode_error is not None


def test_badge_is_honest_and_names_the_leeway():
    from screens.widgets.token_report import badge, verdict

    now = 1_800_000_000.0
    token = f"{_segment({'alg': 'ES256', 'kid': 'k'})}.{_segment({'iss': 'https://i', 'sub': 's', 'exp': now - 3})}.c2ln"
    report = T.diagnose(token, providers=PROVIDERS, verify=False, now=now)
    assert report.match.chosen.provider.kind == "customJwt" and report.valid
    assert badge(report, now).plain == (" EXPIRED   expired 3 s ago — still accepted by Convex's 5 s leeway (customJwt).")
    assert verdict(report, ReportContext()).plain.startswith(" ACCEPTED  Accepted by provider #2")
    later = T.diagnose(token, providers=PROVIDERS, verify=False, now=now + 60)
    assert badge(later, now + 60).plain == " EXPIRED   expired 1 min ago" and not later.valid
