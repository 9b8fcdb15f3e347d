"""JWT verification in the emulator, as Convex does it (PROTOCOL §6.2): real keys, real HTTP."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from console.emulator import auth
from console.emulator.auth import (
    AuthProvider,
    JwksCache,
    TokenVerifier,
    list_auth_providers,
    normalize_issuer_url,
    parse_provider,
)
from console.emulator.errors import ApiError

NOW = 1_900_000_000


class JwksServer:
    """A local HTTP server whose responses tests set per path: (status, content type, body)."""

    def __init__(self):
        self.responses: dict[str, tuple[int, str, bytes]] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                status, content_type, body = server.responses.get(
                    self.path, (404, "text/plain", b"not found"))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def set_json(self, path: str, document, content_type: str = "application/json", status=200):
        self.responses[path] = (status, content_type, json.dumps(document).encode())

    def set_oidc(self, issuer_path: str, jwks: dict, *, issuer: str | None = None) -> str:
        issuer_url = issuer or self.url + issuer_path
        self.set_json(issuer_path + "/.well-known/openid-configuration", {
            "issuer": issuer_url,
            "jwks_uri": self.url + issuer_path + "/jwks",
            "authorization_endpoint": issuer_url + "/authorize",
        })
        self.set_json(issuer_path + "/jwks", jwks)
        return issuer_url

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server():
    srv = JwksServer()
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def keys():
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    return {"rsa": rsa_key, "rsa2": other_rsa, "ec": ec_key, "ed": ed_key}


def public_jwk(key, kid: str | None, alg: str | None = None) -> dict:
    public = key.public_key()
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = json.loads(RSAAlgorithm.to_jwk(public))
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        jwk = json.loads(ECAlgorithm.to_jwk(public))
    else:
        jwk = json.loads(OKPAlgorithm.to_jwk(public))
    if kid is not None:
        jwk["kid"] = kid
    if alg is not None:
        jwk["alg"] = alg
    return jwk


def sign(key, claims: dict, *, alg: str = "RS256", kid: str | None = "k1", headers=None) -> str:
    header = dict(headers or {})
    if kid is not None:
        header["kid"] = kid
    return pyjwt.encode(claims, key, algorithm=alg, headers=header)


def claims(iss: str, aud="convex", **extra) -> dict:
    body = {"iss": iss, "sub": "user_1", "iat": NOW - 10, "exp": NOW + 3600}
    if aud is not None:
        body["aud"] = aud
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


def verifier(providers: list[dict], now: float = NOW, **cache_kwargs) -> TokenVerifier:
    parsed = [parse_provider(p) for p in providers]
    cache = JwksCache(timeout_s=2.0, **cache_kwargs)
    return TokenVerifier(parsed, jwks=cache, now_s=lambda: now)


def rejects(verifier_: TokenVerifier, token: str) -> ApiError:
    with pytest.raises(ApiError) as info:
        verifier_.verify(token)
    return info.value


# --- OIDC ------------------------------------------------------------------------------


def test_oidc_rs256_token_gives_mapped_identity(server, keys):
    issuer = server.set_oidc("/oidc-rs", {"keys": [public_jwk(keys["rsa"], "k1", "RS256")]})
    v = verifier([{"domain": issuer, "applicationID": "convex"}])
    token = sign(keys["rsa"], claims(
        issuer, name="Ada", given_name="Ada", email="ada@example.com", email_verified=True,
        org="acme", jti="j1", nbf=NOW - 100, picture="https://img/ada.png",
    ))
    identity = v.verify(token)
    user = identity.user_attributes
    assert identity.kind == "user"
    assert user["tokenIdentifier"] == f"{issuer}|user_1"
    assert user["subject"] == "user_1" and user["issuer"] == issuer
    assert user["name"] == "Ada" and user["givenName"] == "Ada"
    assert user["email"] == "ada@example.com" and user["emailVerified"] is True
    assert user["pictureUrl"] == "https://img/ada.png"
    assert user["org"] == "acme"
    assert "jti" not in user and "nbf" not in user and "given_name" not in user


def test_oidc_eddsa_is_accepted(server, keys):
    issuer = server.set_oidc("/oidc-ed", {"keys": [public_jwk(keys["ed"], "ed1")]})
    v = verifier([{"domain": issuer, "applicationID": "convex"}])
    token = sign(keys["ed"], claims(issuer), alg="EdDSA", kid="ed1")
    assert v.verify(token).user_attributes["subject"] == "user_1"


def test_oidc_without_kid_uses_the_single_matching_key(server, keys):
    issuer = server.set_oidc("/oidc-nokid", {"keys": [public_jwk(keys["rsa"], "k1")]})
    v = verifier([{"domain": issuer, "applicationID": "convex"}])
    assert v.verify(sign(keys["rsa"], claims(issuer), kid=None)).kind == "user"


def test_oidc_es256_is_rejected(server, keys):
    issuer = server.set_oidc("/oidc-es", {"keys": [public_jwk(keys["ec"], "e1")]})
    v = verifier([{"domain": issuer, "applicationID": "convex"}])
    error = rejects(v, sign(keys["ec"], claims(issuer), alg="ES256", kid="e1"))
    assert (error.status, error.code, error.message) == (401, "Unauthenticated", auth.MSG_OIDC_VERIFY)
    assert "ES256" in error.detail


def test_oidc_several_audiences_are_rejected(server, keys):
    issuer = server.set_oidc("/oidc-aud", {"keys": [public_jwk(keys["rsa"], "k1")]})
    v = verifier([{"domain": issuer, "applicationID": "convex"}])
    error = rejects(v, sign(keys["rsa"], claims(issuer, aud=["convex", "other"])))
    assert (error.status, error.code, error.message) == (401, "Unauthenticated", auth.MSG_OIDC_VERIFY)
    assert "other" in error.detail


def test_oidc_expired_token_and_exact_expiry(server, keys):
    issuer = server.set_oidc("/oidc-exp", {"keys": [public_jwk(keys["rsa"], "k1")]})
    v = verifier([{"domain": issuer, "applicationID": "convex"}])
    error = rejects(v, sign(keys["rsa"], claims(issuer, exp=NOW)))  # exp == now: expired
    assert (error.status, error.message) == (401, auth.MSG_OIDC_VERIFY)
    assert "expired" in error.detail
    assert v.verify(sign(keys["rsa"], claims(issuer, exp=NOW + 1))).kind == "user"


def test_oidc_bad_signature_and_unknown_kid(server, keys):
    issuer = server.set_oidc("/oidc-sig", {"keys": [public_jwk(keys["rsa"], "k1")]})
    v = verifier([{"domain": issuer, "applicationID": "convex"}])
    forged = sign(keys["rsa2"], claims(issuer))
    error = rejects(v, forged)
    assert (error.code, error.message, error.detail) == (
        "Unauthenticated", auth.MSG_OIDC_VERIFY, "signature verification failed")
    error = rejects(v, sign(keys["rsa"], claims(issuer), kid="nope"))
    assert error.message == auth.MSG_OIDC_VERIFY and "no matching key" in error.detail


def test_oidc_missing_sub_is_not_an_id_token(server, keys):
    issuer = server.set_oidc("/oidc-nosub", {"keys": [public_jwk(keys["rsa"], "k1")]})
    v = verifier([{"domain": issuer, "applicationID": "convex"}])
    error = rejects(v, sign(keys["rsa"], claims(issuer, sub=None)))
    assert (error.status, error.code, error.message) == (401, "InvalidAuthHeader", auth.MSG_OIDC_PARSE)


def test_oidc_at_jwt_type_is_rejected(server, keys):
    issuer = server.set_oidc("/oidc-typ", {"keys": [public_jwk(keys["rsa"], "k1")]})
    v = verifier([{"domain": issuer, "applicationID": "convex"}])
    error = rejects(v, sign(keys["rsa"], claims(issuer), headers={"typ": "at+jwt"}))
    assert error.message == auth.MSG_OIDC_VERIFY and "at+jwt" in error.detail


def test_oidc_trailing_slash_in_domain_matches(server, keys):
    issuer = server.set_oidc("/oidc-slash", {"keys": [public_jwk(keys["rsa"], "k1")]})
    v = verifier([{"domain": issuer + "/", "applicationID": "convex"}])
    assert v.verify(sign(keys["rsa"], claims(issuer))).kind == "user"


def test_oidc_discovery_unreachable_and_404(server, keys):
    dead = "http://127.0.0.1:9"  # discard port: connection refused
    v = verifier([{"domain": dead, "applicationID": "convex"}])
    error = rejects(v, sign(keys["rsa"], claims(dead)))
    assert (error.status, error.code) == (400, "AuthProviderDiscoveryFailed")
    assert error.message == f"Auth provider discovery of {dead} failed"
    missing = server.url + "/no-such-issuer"
    v = verifier([{"domain": missing, "applicationID": "convex"}])
    error = rejects(v, sign(keys["rsa"], claims(missing)))
    assert (error.status, error.code) == (404, "AuthProviderDiscoveryFailed")
    assert error.message.startswith(f"Auth provider discovery of {missing} failed: 404 Not Found")


def test_oidc_key_rotation_refetches_on_unknown_kid(server, keys):
    issuer = server.set_oidc("/oidc-rot", {"keys": [public_jwk(keys["rsa"], "old")]})
    v = verifier([{"domain": issuer, "applicationID": "convex"}], min_refresh_s=0)
    assert v.verify(sign(keys["rsa"], claims(issuer), kid="old")).kind == "user"
    server.set_json("/oidc-rot/jwks", {"keys": [public_jwk(keys["rsa2"], "new")]})
    assert v.verify(sign(keys["rsa2"], claims(issuer), kid="new")).kind == "user"


# --- customJwt -------------------------------------------------------------------------


def custom_provider(server, path: str, jwks: dict | None, *, issuer="https://custom.example.com",
                    algorithm="RS256", app_id="convex", content_type="application/json") -> dict:
    if jwks is not None:
        server.set_json(path, jwks, content_type=content_type)
    provider = {"type": "customJwt", "issuer": issuer, "jwks": server.url + path,
                "algorithm": algorithm}
    if app_id is not None:
        provider["applicationID"] = app_id
    return provider


def test_custom_rs256_and_identity_flattening(server, keys):
    provider = custom_provider(server, "/c-rs.json", {"keys": [public_jwk(keys["rsa"], "k1")]})
    v = verifier([provider])
    token = sign(keys["rsa"], claims(
        "https://custom.example.com", email="a@b.c", name="Ada",
        properties={"email": "x@y.z", "plan": {"tier": "pro"}}, fva=[1, 2],
    ))
    user = v.verify(token).user_attributes
    assert user["tokenIdentifier"] == "https://custom.example.com|user_1"
    assert user["email"] == "a@b.c" and user["name"] == "Ada"
    assert user["properties.email"] == "x@y.z"
    assert user["properties.plan.tier"] == "pro"
    assert "fva" not in user and "emailVerified" not in user


def test_custom_es256_and_jwk_set_json_content_type(server, keys):
    provider = custom_provider(server, "/c-es.json", {"keys": [public_jwk(keys["ec"], "e1")]},
                               algorithm="ES256", content_type="application/jwk-set+json")
    v = verifier([provider])
    token = sign(keys["ec"], claims("https://custom.example.com"), alg="ES256", kid="e1")
    assert v.verify(token).user_attributes["subject"] == "user_1"


def test_custom_data_url_jwks_and_issuer_without_scheme(keys):
    jwks = json.dumps({"keys": [public_jwk(keys["rsa"], "k1")]}).encode()
    data_url = "data:application/json;base64," + base64.b64encode(jwks).decode()
    v = verifier([{"type": "customJwt", "issuer": "auth.example.com/", "jwks": data_url,
                   "algorithm": "RS256"}])
    token = sign(keys["rsa"], claims("auth.example.com", aud=None))
    user = v.verify(token).user_attributes
    assert user["issuer"] == "auth.example.com"  # the raw `iss`, as Convex keeps it
    error = rejects(verifier([{"type": "customJwt", "issuer": "auth.example.com",
                               "jwks": "data:application/json;base64,%%%", "algorithm": "RS256"}]),
                    token)
    assert (error.status, error.message) == (401, auth.MSG_BAD_DATA_URL)


def test_custom_missing_kid(server, keys):
    v = verifier([custom_provider(server, "/c-kid.json", {"keys": [public_jwk(keys["rsa"], "k1")]})])
    error = rejects(v, sign(keys["rsa"], claims("https://custom.example.com"), kid=None))
    assert (error.status, error.code, error.message) == (401, "InvalidAuthHeader", auth.MSG_MISSING_KID)


def test_custom_unknown_kid_and_bad_signature(server, keys):
    v = verifier([custom_provider(server, "/c-unk.json", {"keys": [public_jwk(keys["rsa"], "k1")]})])
    error = rejects(v, sign(keys["rsa"], claims("https://custom.example.com"), kid="k9"))
    assert error.message == auth.kid_message("k9") and error.status == 401
    error = rejects(v, sign(keys["rsa2"], claims("https://custom.example.com"), kid="k1"))
    assert error.message == auth.kid_message("k1")
    assert error.detail == "signature verification failed"


def test_custom_algorithm_mismatch(server, keys):
    v = verifier([custom_provider(server, "/c-alg.json", {"keys": [public_jwk(keys["ec"], "e1")]})])
    error = rejects(v, sign(keys["ec"], claims("https://custom.example.com"), alg="ES256", kid="e1"))
    assert error.message == auth.kid_message("e1") and "RS256" in error.detail


def test_custom_expiry_with_five_second_leeway(server, keys):
    v = verifier([custom_provider(server, "/c-exp.json", {"keys": [public_jwk(keys["rsa"], "k1")]})])
    iss = "https://custom.example.com"
    assert v.verify(sign(keys["rsa"], claims(iss, exp=NOW - 5))).kind == "user"
    error = rejects(v, sign(keys["rsa"], claims(iss, exp=NOW - 60)))
    assert (error.status, error.code) == (401, "InvalidAuthHeader")
    assert error.message == "Could not validate token: Token expired 60 seconds ago"


def test_custom_nbf_and_iat_in_future(server, keys):
    v = verifier([custom_provider(server, "/c-nbf.json", {"keys": [public_jwk(keys["rsa"], "k1")]})])
    iss = "https://custom.example.com"
    error = rejects(v, sign(keys["rsa"], claims(iss, nbf=NOW + 120)))
    assert error.message == "Could not validate token: Token will be valid in 120 seconds"
    error = rejects(v, sign(keys["rsa"], claims(iss, iat=NOW + 30)))
    assert error.message == "Could not validate token: Token will be valid in 30 seconds"
    assert v.verify(sign(keys["rsa"], claims(iss, nbf=NOW + 4))).kind == "user"


def test_custom_missing_sub_or_exp(server, keys):
    v = verifier([custom_provider(server, "/c-sub.json", {"keys": [public_jwk(keys["rsa"], "k1")]})])
    iss = "https://custom.example.com"
    for missing in ("sub", "exp"):
        error = rejects(v, sign(keys["rsa"], claims(iss, **{missing: None})))
        assert (error.status, error.code, error.message) == (
            401, "InvalidAuthHeader", auth.MSG_CUSTOM_CLAIMS)
        assert missing in error.detail


def test_custom_jwks_unreachable_404_content_type_and_not_json(server, keys):
    iss = "https://custom.example.com"
    token = sign(keys["rsa"], claims(iss))
    dead = {"type": "customJwt", "issuer": iss, "jwks": "http://127.0.0.1:9/jwks.json",
            "algorithm": "RS256"}
    error = rejects(verifier([dead]), token)
    assert error.status == 401 and error.code == "InvalidAuthHeader"
    assert error.message.startswith("Could not fetch JWKS from URL 'http://127.0.0.1:9/jwks.json': ")
    assert error.message.endswith("Check that the URL is correct and accessible.")

    error = rejects(verifier([custom_provider(server, "/c-missing.json", None)]), token)
    assert error.message == (
        f"Could not fetch JWKS from URL '{server.url}/c-missing.json': HTTP 404 Not Found. "
        "Check that the URL is correct and accessible.")

    wrong_type = custom_provider(server, "/c-type.json", {"keys": []}, content_type="text/html")
    error = rejects(verifier([wrong_type]), token)
    assert error.message == (
        f"Invalid Content-Type 'text/html' when fetching JWKS from '{server.url}/c-type.json'. "
        "Expected 'application/json' or 'application/jwk-set+json'.")

    server.responses["/c-bad.json"] = (200, "application/json", b"<html>not json")
    provider = {"type": "customJwt", "issuer": iss, "jwks": server.url + "/c-bad.json",
                "algorithm": "RS256"}
    error = rejects(verifier([provider]), token)
    assert error.message == (
        f"Invalid JWKS response body from '{server.url}/c-bad.json'. The response is not valid "
        "JSON or doesn't match the expected JWKS format.")


# --- provider selection and bad tokens --------------------------------------------------


def test_no_provider_messages(server, keys):
    token = sign(keys["rsa"], claims("https://elsewhere.example.com"))
    error = rejects(verifier([]), token)
    assert (error.status, error.code) == (401, "NoAuthProvider")
    assert error.message == ("No auth provider found matching the given token (no providers "
                             "configured). Check convex/auth.config.ts.")
    providers = [
        {"domain": "https://clerk.example.com", "applicationID": "convex"},
        {"type": "customJwt", "issuer": "https://custom.example.com", "jwks": "data:,{}",
         "algorithm": "ES256"},
    ]
    error = rejects(verifier(providers), token)
    assert error.message == (
        "No auth provider found matching the given token. Check that your JWT's issuer and "
        "audience match one of your configured providers: [OIDC(domain=https://clerk.example.com, "
        "app_id=convex), CustomJWT(issuer=https://custom.example.com, app_id=none)]")


def test_wrong_aud_and_missing_aud_choose_no_provider(keys):
    v = verifier([{"domain": "https://clerk.example.com", "applicationID": "convex"}])
    for aud in ("my-app", None, ["a", "b"]):
        error = rejects(v, sign(keys["rsa"], claims("https://clerk.example.com", aud=aud)))
        assert error.code == "NoAuthProvider"


@pytest.mark.parametrize("token", [
    "garbage", "", "a.b", "a.%%%.c", "e30.bm90IGpzb24.sig",
    "eyJhbGciOiJIUzI1NiJ9.WzEsMl0.sig",  # payload is an array
    "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOjV9.sig",  # iss is a number
])
def test_garbage_tokens_give_parse_error(token):
    error = rejects(verifier([{"domain": "https://x.example.com", "applicationID": "convex"}]), token)
    assert (error.status, error.code, error.message) == (401, "InvalidAuthHeader",
                                                         auth.MSG_PARSE_PAYLOAD)


def test_missing_iss():
    token = "eyJhbGciOiJub25lIn0." + base64.urlsafe_b64encode(b'{"sub":"x"}').decode().rstrip("=") + "."
    error = rejects(verifier([]), token)
    assert (error.code, error.message) == ("InvalidAuthHeader", auth.MSG_MISSING_ISS)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300) | st.binary(max_size=200).map(
    lambda b: ".".join(base64.urlsafe_b64encode(b).decode().rstrip("=") for _ in range(3))))
def test_any_input_gives_an_api_error_never_a_crash(text):
    v = verifier([{"type": "customJwt", "issuer": "https://x.example.com",
                   "jwks": "data:application/json,{\"keys\":[]}", "algorithm": "RS256"}])
    with pytest.raises(ApiError) as info:
        v.verify(text)
    assert info.value.status in (400, 401)


# --- caching -------------------------------------------------------------------------


def test_verified_tokens_and_jwks_are_cached_until_expiry(server, keys):
    issuer = server.set_oidc("/oidc-cache", {"keys": [public_jwk(keys["rsa"], "k1")]})
    now = [NOW]
    parsed = [parse_provider({"domain": issuer, "applicationID": "convex"})]
    cache = JwksCache()
    v = TokenVerifier(parsed, jwks=cache, now_s=lambda: now[0])
    token = sign(keys["rsa"], claims(issuer, exp=NOW + 60))
    first = v.verify(token)
    fetches = cache.fetch_count
    assert v.verify(token) is first and cache.fetch_count == fetches == 2
    other = sign(keys["rsa"], claims(issuer, sub="user_2", exp=NOW + 60))
    assert v.verify(other).user_attributes["subject"] == "user_2"
    assert cache.fetch_count == fetches  # JWKS reused for a new token
    now[0] = NOW + 60
    assert rejects(v, token).message == auth.MSG_OIDC_VERIFY  # the cache respects exp


async def test_averify_does_not_block_the_event_loop(server, keys):
    issuer = server.set_oidc("/oidc-async", {"keys": [public_jwk(keys["rsa"], "k1")]})
    v = verifier([{"domain": issuer, "applicationID": "convex"}])
    identity = await v.averify(sign(keys["rsa"], claims(issuer)))
    assert identity.user_attributes["subject"] == "user_1"


# --- provider configuration -------------------------------------------------------------


@pytest.mark.parametrize("given_, expected", [
    ("clerk.example.com", "https://clerk.example.com"),
    ("https://clerk.example.com/", "https://clerk.example.com/"),
    ("http://127.0.0.1:3210/emulator-auth", "http://127.0.0.1:3210/emulator-auth"),
    ("localhost:8080", "https://localhost:8080"),
])
def test_issuer_normalisation(given_, expected):
    assert normalize_issuer_url(given_) == expected


@pytest.mark.parametrize("bad, reason", [
    ('"https://x.com"', "starts with a double quote"),
    ("ftp://x.com", "scheme should be http or https"),
    ("not-a-domain", "Does not look like a URL"),
])
def test_invalid_domains(bad, reason):
    with pytest.raises(ApiError) as info:
        parse_provider({"domain": bad, "applicationID": "convex"})
    assert info.value.code == "InvalidProviderDomainUrl" and reason in info.value.message
    assert info.value.message.startswith(f'Invalid provider domain URL "{bad}": ')


def test_invalid_algorithm():
    with pytest.raises(ApiError) as info:
        parse_provider({"type": "customJwt", "issuer": "https://x.com", "jwks": "data:,",
                        "algorithm": "HS256"})
    assert info.value.message == (
        "Invalid signature algorithm (only RS256 and ES256 are supported): HS256")


def test_list_auth_providers_rows():
    class App:
        auth_config = {"providers": [
            {"domain": "clerk.example.com", "applicationID": "convex"},
            {"type": "customJwt", "issuer": "https://c.example.com", "jwks": "https://c.example.com/j",
             "algorithm": "ES256"},
        ]}

    rows = list_auth_providers(App())
    assert [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows] == [
        {"applicationID": "convex", "domain": "https://clerk.example.com"},
        {"type": "customJwt", "applicationID": None, "issuer": "https://c.example.com",
         "jwks": "https://c.example.com/j", "algorithm": '"ES256"'},
    ]
    assert all(isinstance(row["_id"], str) and isinstance(row["_creationTime"], float) for row in rows)
    assert rows[0]["_id"] != rows[1]["_id"]
    assert AuthProvider("oidc", "https://a.b", "convex").matches(["convex"], "a.b/")


def test_dead_jwks_costs_one_fetch_per_failure_window(keys):
    iss = "https://custom.example.com"
    provider = {"type": "customJwt", "issuer": iss, "jwks": "http://127.0.0.1:9/jwks.json",
                "algorithm": "RS256"}
    v = verifier([provider], failure_ttl_s=60)
    for sub in ("a", "b", "c"):
        assert rejects(v, sign(keys["rsa"], claims(iss, sub=sub))).code == "InvalidAuthHeader"
    assert v.jwks.fetch_count == 1


def test_es256_key_of_the_wrong_curve_is_refused(server, keys):
    p384 = ec.generate_private_key(ec.SECP384R1())
    jwk = public_jwk(p384, "p384")
    provider = custom_provider(server, "/c-p384.json", {"keys": [jwk]}, algorithm="ES256")
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "ES256", "kid": "p384"}).encode())
    body = b64(json.dumps(claims("https://custom.example.com")).encode())
    r, s_ = decode_dss_signature(p384.sign(f"{header}.{body}".encode(), ec.ECDSA(hashes.SHA256())))
    token = f"{header}.{body}." + b64(r.to_bytes(48, "big") + s_.to_bytes(48, "big"))
    error = rejects(verifier([provider]), token)
    assert error.message == auth.kid_message("p384")


def test_valid_until_follows_the_leeway(server, keys):
    v = verifier([custom_provider(server, "/c-until.json", {"keys": [public_jwk(keys["rsa"], "k1")]})])
    token = sign(keys["rsa"], claims("https://custom.example.com", exp=NOW + 100))
    assert v.valid_until(token) is None
    v.verify(token)
    assert v.valid_until(token) == NOW + 106
