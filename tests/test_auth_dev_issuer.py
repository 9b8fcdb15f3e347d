"""The built-in development issuer: mint -> verify -> identity, its HTTP routes, the mint CLI."""

from __future__ import annotations

import json
import stat

import httpx
import pytest

from console import token_mint
from console.emulator.auth import (
    DEV_ISSUER,
    DEV_ISSUER_KEY_FILE,
    DevIssuer,
    EmulatorAuth,
    JwksCache,
    TokenVerifier,
    list_auth_providers,
    parse_provider,
    stored_issuer_url,
)
from console.emulator.errors import ApiError


class DemoLikeApp:
    auth_config = {"providers": [{"domain": DEV_ISSUER, "applicationID": "convex"}]}


def query(url: str, path: str, authorization: str | None) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization else {}
    body = {"path": path, "args": {}, "format": "convex_encoded_json"}
    return httpx.post(url + "/api/query", json=body, headers=headers, timeout=10)


def mint_over_http(emulator, **body) -> httpx.Response:
    return httpx.post(emulator.url + "/api/emulator/mint_token", json=body,
                      headers={"Authorization": f"Convex {emulator.admin_key}"}, timeout=10)


def test_key_file_is_private_and_reused(tmp_path):
    first = DevIssuer.load_or_create(tmp_path)
    token = first.mint("user_1")
    key_file = tmp_path / DEV_ISSUER_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    second = DevIssuer.load_or_create(tmp_path)
    assert second.kid == first.kid and token.count(".") == 2
    assert second.jwks()["keys"][0]["kid"] == first.kid
    assert "d" not in second.jwks()["keys"][0]  # only the public half is published


def test_mint_verify_identity_round_trip_in_memory():
    auth = EmulatorAuth(app=DemoLikeApp())
    auth.set_base_url("http://127.0.0.1:4321")
    assert auth.provider_documents() == [
        {"applicationID": "convex", "domain": "http://127.0.0.1:4321/emulator-auth"}]
    token = auth.mint("user_9", claims={"name": "Bo", "email": "bo@example.com", "role": "admin"})
    user = auth.verify(token).user_attributes
    assert user["tokenIdentifier"] == "http://127.0.0.1:4321/emulator-auth|user_9"
    assert (user["name"], user["email"], user["role"]) == ("Bo", "bo@example.com", "admin")
    assert auth.cached(token) is not None  # the next request takes the cheap path
    with pytest.raises(ApiError) as info:
        auth.verify(auth.mint("user_9", aud="not-convex"))
    assert info.value.code == "NoAuthProvider"
    assert "OIDC(domain=http://127.0.0.1:4321/emulator-auth, app_id=convex)" in info.value.message


def test_manual_clock_ages_tokens():
    class Clock:
        ns = 1_900_000_000 * 10**9

        def now_ns(self):
            return self.ns

    clock = Clock()
    auth = EmulatorAuth.for_clock(clock, app=DemoLikeApp())
    token = auth.mint("user_1", ttl="1m")
    assert auth.verify(token).kind == "user"
    clock.ns += 61 * 10**9
    with pytest.raises(ApiError) as info:
        auth.verify(token)
    assert (info.value.status, info.value.code) == (401, "Unauthenticated")


def test_discovery_and_jwks_are_served_and_verify_over_real_http(emulator):
    issuer = emulator.url + "/emulator-auth"
    discovery = httpx.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
    assert discovery["issuer"] == issuer
    jwks = httpx.get(discovery["jwks_uri"], timeout=10)
    assert jwks.headers["content-type"].startswith("application/json")
    assert jwks.json()["keys"][0]["alg"] == "RS256" and jwks.json()["keys"][0]["kid"]
    minted = mint_over_http(emulator, sub="user_2", ttl="10m", claims={"name": "Cy"})
    assert minted.status_code == 200, minted.text
    data = minted.json()
    assert data["issuer"] == issuer and isinstance(data["expiresAt"], int)
    # An independent verifier (no in-memory shortcut): OIDC discovery over the socket.
    cache = JwksCache()
    verifier = TokenVerifier([parse_provider({"domain": issuer, "applicationID": "convex"})],
                             jwks=cache)
    assert verifier.verify(data["token"]).user_attributes["name"] == "Cy"
    assert cache.fetch_count == 2


def test_mint_endpoint_requires_the_admin_key(emulator):
    url = emulator.url + "/api/emulator/mint_token"
    assert httpx.post(url, json={"sub": "x"}, timeout=10).status_code == 403
    wrong = httpx.post(url, json={"sub": "x"}, headers={"Authorization": "Convex nope|00"},
                       timeout=10)
    assert wrong.status_code == 403 and wrong.json()["code"] == "BadDeployKey"
    bad = mint_over_http(emulator, sub="")
    assert bad.status_code == 400 and "sub" in bad.json()["message"]
    bad_ttl = mint_over_http(emulator, sub="x", ttl="forever")
    assert bad_ttl.status_code == 400 and "TTL" in bad_ttl.json()["message"]


def test_bearer_query_sees_the_identity_and_errors_are_convex_401s(emulator):
    token = mint_over_http(emulator, sub="user_3", claims={"email": "c@d.e"}).json()["token"]
    response = query(emulator.url, "users:viewer", f"Bearer {token}")
    assert response.status_code == 200, response.text
    value = response.json()["value"]
    assert value["subject"] == "user_3" and value["email"] == "c@d.e"
    assert value["tokenIdentifier"] == f"{emulator.url}/emulator-auth|user_3"
    tampered = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    response = query(emulator.url, "users:viewer", f"Bearer {tampered}")
    assert response.status_code == 401 and response.json()["code"] == "Unauthenticated"
    response = query(emulator.url, "users:viewer", "Bearer not.a.jwt")
    assert response.status_code == 401 and response.json()["code"] == "InvalidAuthHeader"


def test_list_auth_providers_of_the_running_demo(emulator):
    rows = list_auth_providers(emulator.deployment.app)
    assert len(rows) == 1
    assert rows[0]["domain"] == emulator.url + "/emulator-auth"
    assert rows[0]["applicationID"] == "convex" and "_id" in rows[0]


# --- the CLI -----------------------------------------------------------------------------


def test_cli_mints_locally_for_a_data_dir_the_emulator_verifies(tmp_path, capsys, emulator_factory):
    emulator = emulator_factory(data_dir=tmp_path)
    assert stored_issuer_url(tmp_path) == emulator.url + "/emulator-auth"
    code = token_mint.main(["token", "mint", "--sub", "user_4", "--data-dir", str(tmp_path),
                            "--claim", "role=admin", "--claim", "level=3", "--ttl", "10m"])
    assert code == 0
    token = capsys.readouterr().out.strip()
    response = query(emulator.url, "users:viewer", f"Bearer {token}")
    assert response.status_code == 200, response.text
    value = response.json()["value"]
    assert value["subject"] == "user_4" and value["role"] == "admin"


def test_cli_asks_a_running_emulator(emulator, capsys, monkeypatch):
    monkeypatch.setenv("EMU_TEST_ADMIN_KEY", emulator.admin_key)
    code = token_mint.main(["--sub", "user_5", "--url", emulator.url,
                            "--admin-key-env", "EMU_TEST_ADMIN_KEY", "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["issuer"] == emulator.url + "/emulator-auth"
    response = query(emulator.url, "users:viewer", f"Bearer {printed['token']}")
    assert response.json()["value"]["subject"] == "user_5"
    monkeypatch.setenv("EMU_TEST_ADMIN_KEY", "wrong|key")
    assert token_mint.main(["--sub", "u", "--url", emulator.url,
                            "--admin-key-env", "EMU_TEST_ADMIN_KEY"]) == 1
    assert "403" in capsys.readouterr().err


def test_cli_usage_errors(capsys, monkeypatch):
    with pytest.raises(SystemExit) as info:
        token_mint.main(["--sub", "u"])
    assert info.value.code == 2 and "--data-dir" in capsys.readouterr().err
    monkeypatch.delenv("CONVEX_SELF_HOSTED_ADMIN_KEY", raising=False)
    assert token_mint.main(["--sub", "u", "--url", "http://127.0.0.1:9"]) == 1
    assert "CONVEX_SELF_HOSTED_ADMIN_KEY" in capsys.readouterr().err


def test_custom_jwt_provider_can_trust_the_built_in_issuer():
    class App:
        auth_config = {"providers": [{"type": "customJwt", "issuer": DEV_ISSUER, "jwks": DEV_ISSUER,
                                      "algorithm": "RS256"}]}

    auth = EmulatorAuth(app=App())
    auth.set_base_url("http://127.0.0.1:5555")
    document = auth.provider_documents()[0]
    assert document["jwks"] == "http://127.0.0.1:5555/emulator-auth/.well-known/jwks.json"
    assert document["algorithm"] == '"RS256"'
    token = auth.mint("user_7", aud=None, claims={"profile": {"team": "blue"}})
    user = auth.verify(token).user_attributes
    assert user["profile.team"] == "blue" and user["subject"] == "user_7"
    assert auth.jwks.fetch_count == 0  # served from memory, no request to ourselves


def test_list_auth_providers_from_a_deployment(emulator):
    rows = list_auth_providers(emulator.deployment)
    assert rows == list_auth_providers(emulator.deployment.app)
    assert rows[0]["_creationTime"] > 1.7e12  # ms since the epoch, like a pushed config
