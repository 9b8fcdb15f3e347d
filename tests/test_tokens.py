import base64
import io
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from console import tokens as T
from console import token_cli
from console import values

NOW = 1_800_000_000.0


# ---------------------------------------------------------------------------
# Keys and a real local HTTP server for discovery documents and JWKS


@pytest.fixture(scope="module")
def keys():
    return {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "rsa_other": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec": ec.generate_private_key(ec.SECP256R1()),
        "ed": ed25519.Ed25519PrivateKey.generate(),
    }


def jwk(private_key, kid, alg):
    public = private_key.public_key()
    if alg == "RS256":
        data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))
    elif alg == "ES256":
        data = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public))
    else:
        data = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(public))
    return {**data, "kid": kid, "alg": alg, "use": "sig"}


def pem(private_key):
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


class Server:
    """http.server on a free port; routes map a path to (status, content type, body bytes)."""

    def __init__(self):
        self.routes = {}
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                status, content_type, body = routes.get(self.path, (404, "text/plain", b"not found"))
                if callable(body):
                    body = body(self)
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _serve

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def json(self, path, value, content_type="application/json", status=200):
        self.routes[path] = (status, content_type, json.dumps(value).encode())
        return self.base + path

    def issuer(self, name, jwks_keys, jwks_content_type="application/json", issuer_override=None):
        """Serves /<name>/.well-known/openid-configuration and /<name>/jwks; returns the issuer URL."""
        issuer = f"{self.base}/{name}"
        self.json(f"/{name}/.well-known/openid-configuration",
                  {"issuer": issuer_override or issuer, "jwks_uri": f"{issuer}/jwks"})
        self.json(f"/{name}/jwks", {"keys": jwks_keys}, content_type=jwks_content_type)
        return issuer


@pytest.fixture(scope="module")
def server():
    srv = Server()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def closed_port_url():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def mint(key, alg="RS256", kid="k1", now=NOW, **claims):
    headers = {"kid": kid} if kid else {}
    headers.update(claims.pop("headers", {}))
    payload = {"iss": "https://issuer.example", "sub": "user_1", "aud": "convex", "iat": now, "exp": now + 3600}
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def codes(problems):
    return [p.code for p in problems]


# ---------------------------------------------------------------------------
# Decoding: every kind of bad input gets its own diagnosis


@pytest.mark.parametrize(
    "text, code",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("hello world", "whitespace"),
        ("garbage", "not_a_jwt"),
        ("eyJhbGciOiJSUzI1NiJ9", "truncated"),
        ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0", "two_parts"),
        ("a.b.c.d.e", "encrypted"),
        ("a.b.c.d", "wrong_part_count"),
        ("eyJ+bGci.eyJzdWIiOiJ4In0.c2ln", "not_base64url"),
        (b64url(b"not json") + "." + b64url(b"{}") + ".c2ln", "not_json"),
        (b64url(b'{"alg":"RS256"}') + "." + b64url(b"{oops") + ".c2ln", "not_json"),
        (b64url(b'{"alg":"RS256"}') + "." + b64url(b"[1,2]") + ".c2ln", "not_json_object"),
        (b64url(b'{"alg":"RS256"}') + "." + b64url(b"\xff\xfe") + ".c2ln", "not_json"),
        (b64url(b'{"alg":"RS256"}') + "." + b64url(b"{}") + ".abcde", "truncated"),
        ("." + b64url(b"{}") + ".c2ln", "empty_header"),
        ("x" * (64 * 1024 + 1), "too_large"),
    ],
)
def test_decode_diagnoses(text, code):
    with pytest.raises(T.TokenError) as info:
        T.decode_token(text)
    assert info.value.code == code
    assert info.value.message and info.value.problem.is_error


def test_decode_good_token_and_bearer_prefix(keys):
    token = mint(keys["rsa"], email="a@b.c")
    decoded = T.decode_token(f"  Bearer {token}\n")
    assert decoded.raw == token
    assert decoded.header["alg"] == "RS256" and decoded.kid == "k1"
    assert decoded.claims["email"] == "a@b.c" and decoded.audiences == ["convex"]
    assert decoded.problems == []


def test_alg_none_and_bad_claim_types():
    token = b64url(b'{"alg":"none"}') + "." + b64url(json.dumps({"sub": 1, "exp": "soon", "aud": [1]}).encode()) + "."
    decoded = T.decode_token(token)
    assert codes(decoded.problems) == ["alg_none", "bad_time_claim", "bad_claim_type", "bad_claim_type"]
    assert "unsigned" in decoded.problems[0].message
    result = T.verify_token(decoded)
    assert not result.ok and result.error.code == "alg_none"


# ---------------------------------------------------------------------------
# Time claims


def test_time_claims_and_badge():
    claims = {"iat": NOW - 7200, "nbf": NOW - 7200, "exp": NOW + 23 * 60 + 10}
    described = {t.name: t for t in T.describe_time_claims(claims, now=NOW)}
    assert described["exp"].relative == "expires in 23 min"
    assert described["iat"].relative == "issued 2 h ago"
    assert described["nbf"].relative == "valid since 2 h ago"
    assert described["exp"].utc.tzinfo is not None and described["exp"].local.utcoffset() is not None
    assert T.token_status(claims, now=NOW) == T.STATUS_VALID
    assert T.relative_time("exp", NOW - 7300, NOW) == "expired 2 h ago"
    assert T.relative_time("nbf", NOW + 300, NOW) == "becomes valid in 5 min"
    assert T.relative_time("exp", NOW + 3 * 86400, NOW) == "expires in 3 d"
    assert T.token_status({"exp": NOW - 1}, now=NOW) == T.STATUS_EXPIRED
    assert T.token_status({"nbf": NOW + 60}, now=NOW) == T.STATUS_NOT_YET_VALID
    assert T.token_status({}, now=NOW) == T.STATUS_VALID


def test_time_problems_with_leeway():
    assert codes(T.time_problems({"exp": NOW - 3}, NOW)) == ["clock_skew"]
    skew = T.time_problems({"exp": NOW - 3}, NOW, kind="customJwt")[0]
    assert skew.severity == T.WARNING
    assert skew.message == "expired 3 s ago — still accepted by Convex's 5 s leeway (customJwt)."
    assert T.leeway_note([skew]) == skew.message
    oidc = T.time_problems({"exp": NOW - 3}, NOW, kind="oidc")
    assert codes(oidc) == ["expired"] and "allows no leeway" in oidc[0].message
    assert [p.severity for p in T.time_problems({"nbf": NOW + 60, "exp": NOW + 99}, NOW, kind="oidc")] == [T.WARNING]
    assert codes(T.time_problems({"exp": NOW - 6}, NOW)) == ["expired"]
    assert codes(T.time_problems({"nbf": NOW + 60}, NOW)) == ["not_yet_valid"]
    assert codes(T.time_problems({"nbf": NOW + 2}, NOW)) == ["clock_skew"]
    assert codes(T.time_problems({"iat": NOW + 600}, NOW)) == ["iat_in_future"]
    assert T.time_problems({"iat": NOW, "exp": NOW + 10}, NOW) == []


# ---------------------------------------------------------------------------
# Verification against real HTTP endpoints


def test_oidc_discovery_rs256(server, keys):
    issuer = server.issuer("rs", [jwk(keys["rsa"], "k1", "RS256"), jwk(keys["ec"], "k2", "ES256")])
    result = T.verify_token(T.decode_token(mint(keys["rsa"], iss=issuer)))
    assert result.ok, result.problems
    assert result.kid == "k1" and result.jwks_url == issuer + "/jwks"
    assert "OIDC discovery" in result.source


def test_eddsa_and_es256(server, keys):
    issuer = server.issuer("ed", [jwk(keys["ed"], "e1", "EdDSA")])
    assert T.verify_token(T.decode_token(mint(keys["ed"], "EdDSA", "e1", iss=issuer))).ok
    url = server.json("/es/jwks", {"keys": [jwk(keys["ec"], "c1", "ES256")]})
    assert T.verify_token(T.decode_token(mint(keys["ec"], "ES256", "c1")), T.KeySource(jwks_url=url)).ok


async def test_async_variant(server, keys):
    issuer = server.issuer("async", [jwk(keys["rsa"], "k1", "RS256")])
    result = await T.verify_token_async(T.decode_token(mint(keys["rsa"], iss=issuer)))
    assert result.ok
    report = await T.diagnose_async(mint(keys["rsa"], kid="gone", iss=issuer))
    assert report.verification.error.code == "unknown_kid"


def test_unknown_kid_names_the_known_ones(server, keys):
    issuer = server.issuer("rotated", [jwk(keys["rsa"], "new-key", "RS256")])
    result = T.verify_token(T.decode_token(mint(keys["rsa"], kid="old-key", iss=issuer)))
    assert result.error.code == "unknown_kid"
    assert "'old-key'" in result.error.message and "'new-key'" in result.error.message
    assert "rotated" in result.error.message


def test_wrong_algorithm_for_key(server, keys):
    issuer = server.issuer("wrongalg", [jwk(keys["rsa"], "k1", "RS256")])
    result = T.verify_token(T.decode_token(mint(keys["ec"], "ES256", "k1", iss=issuer)))
    assert result.error.code == "wrong_algorithm" and "ES256" in result.error.message


def test_signature_mismatch(server, keys):
    issuer = server.issuer("mismatch", [jwk(keys["rsa"], "k1", "RS256")])
    result = T.verify_token(T.decode_token(mint(keys["rsa_other"], iss=issuer)))
    assert result.error.code == "signature_mismatch"
    token = mint(keys["rsa"], iss=issuer)
    header, payload, signature = token.split(".")
    tampered = json.loads(base64.urlsafe_b64decode(payload + "==="))
    tampered["sub"] = "admin"
    forged = ".".join([header, b64url(json.dumps(tampered).encode()), signature])
    assert T.verify_token(T.decode_token(forged)).error.code == "signature_mismatch"


def test_jwks_unreachable_and_discovery_unreachable(keys):
    base = closed_port_url()
    token = T.decode_token(mint(keys["rsa"], iss=base + "/nowhere"))
    result = T.verify_token(token, timeout=2)
    assert result.error.code == "discovery_unreachable" and base in result.error.message
    result = T.verify_token(token, T.KeySource(jwks_url=base + "/jwks"), timeout=2)
    assert result.error.code == "jwks_unreachable" and "unreachable" in result.error.message


def test_discovery_http_error_and_missing_jwks_uri(server, keys):
    token = T.decode_token(mint(keys["rsa"], iss=server.base + "/missing"))
    assert T.verify_token(token).error.code == "discovery_http_status"
    server.json("/nojwks/.well-known/openid-configuration", {"issuer": server.base + "/nojwks"})
    token = T.decode_token(mint(keys["rsa"], iss=server.base + "/nojwks"))
    assert T.verify_token(token).error.code == "discovery_no_jwks_uri"


def test_discovery_issuer_must_match_exactly(server, keys):
    issuer = server.issuer("slash", [jwk(keys["rsa"], "k1", "RS256")], issuer_override=server.base + "/slash/")
    result = T.verify_token(T.decode_token(mint(keys["rsa"], iss=issuer)))
    assert not result.ok and result.error.code == "discovery_issuer_mismatch"


def test_jwks_not_json(server, keys):
    server.routes["/html/jwks"] = (200, "text/html", b"<html>login page</html>")
    result = T.verify_token(T.decode_token(mint(keys["rsa"])), T.KeySource(jwks_url=server.base + "/html/jwks"))
    assert result.error.code == "jwks_not_json" and "<html>" in result.error.message
    url = server.json("/nokeys/jwks", {"hello": 1})
    assert T.verify_token(T.decode_token(mint(keys["rsa"])), T.KeySource(jwks_url=url)).error.code == "jwks_invalid"


def test_jwks_wrong_content_type(server, keys):
    url = server.json("/ct/jwks", {"keys": [jwk(keys["rsa"], "k1", "RS256")]}, content_type="text/plain")
    token = T.decode_token(mint(keys["rsa"]))
    lenient = T.verify_token(token, T.KeySource(jwks_url=url))
    assert lenient.ok and codes(lenient.problems) == ["jwks_content_type"]
    assert lenient.problems[0].severity == T.WARNING and "text/plain" in lenient.problems[0].message
    strict = T.verify_token(token, T.KeySource(jwks_url=url), strict_content_type=True)
    assert not strict.ok and strict.error.code == "jwks_content_type"
    assert "application/jwk-set+json" in strict.error.message
    good = server.json("/ct2/jwks", {"keys": [jwk(keys["rsa"], "k1", "RS256")]},
                       content_type="application/jwk-set+json; charset=utf-8")
    assert T.verify_token(token, T.KeySource(jwks_url=good), strict_content_type=True).problems == []


def test_data_url_jwks(keys):
    document = json.dumps({"keys": [jwk(keys["ec"], "c1", "ES256")]}).encode()
    url = "data:application/json;base64," + base64.b64encode(document).decode()
    result = T.verify_token(T.decode_token(mint(keys["ec"], "ES256", "c1")), T.KeySource(jwks_url=url))
    assert result.ok and result.source == "data: URL JWKS"


def test_pem_key(keys):
    token = T.decode_token(mint(keys["rsa"]))
    assert T.verify_token(token, T.KeySource(pem=pem(keys["rsa"]))).ok
    assert T.verify_token(token, T.KeySource(pem=pem(keys["rsa_other"]))).error.code == "signature_mismatch"
    assert T.verify_token(token, T.KeySource(pem=pem(keys["ec"]))).error.code == "wrong_algorithm"
    assert T.verify_token(token, T.KeySource(pem="not a key")).error.code == "key_invalid"


def test_hs256(keys):
    secret = "s" * 40
    token = T.decode_token(jwt.encode({"sub": "x", "exp": NOW}, secret, algorithm="HS256"))
    missing = T.verify_token(token)
    assert missing.error.code == "hs_no_secret" and "secret" in missing.error.message
    assert T.verify_token(token, T.KeySource(secret=secret)).ok
    assert T.verify_token(token, T.KeySource(secret="t" * 40)).error.code == "signature_mismatch"
    rsa_token = T.decode_token(mint(keys["rsa"]))
    assert T.verify_token(rsa_token, T.KeySource(secret=secret)).error.code == "wrong_algorithm"


# ---------------------------------------------------------------------------
# Provider matching


OIDC = {"domain": "issuer.example/", "applicationID": "convex"}


def custom_jwt(jwks="https://issuer.example/jwks", **extra):
    return {"type": "customJwt", "issuer": "https://issuer.example", "jwks": jwks, "algorithm": "RS256", **extra}


def check(token, providers, now=NOW):
    return T.match_providers(T.decode_token(token), providers, now=now)


def test_match_accepts_with_normalisation(keys):
    report = check(mint(keys["rsa"]), [OIDC])
    assert report.accepted and report.chosen.index == 0
    assert "Accepted by provider #1" in report.summary


def test_iss_differs_shows_both_normalised(keys):
    report = check(mint(keys["rsa"], iss="other.example/"), [OIDC])
    assert report.chosen is None and not report.accepted
    message = report.checks[0].selection[0].message
    assert report.checks[0].selection[0].code == "iss_mismatch"
    assert "'other.example/' (normalised 'https://other.example')" in message
    assert "'issuer.example/' (normalised 'https://issuer.example')" in message
    assert report.summary.startswith("No auth provider found matching the given token")


def test_aud_missing_and_clerk_template_hint(keys):
    missing = check(mint(keys["rsa"], aud=None), [OIDC]).checks[0].selection[0]
    assert missing.code == "aud_missing" and 'JWT template named "convex"' in missing.message
    wrong = check(mint(keys["rsa"], aud="my-app"), [OIDC]).checks[0].selection[0]
    assert wrong.code == "aud_mismatch" and "'my-app'" in wrong.message and "'convex'" in wrong.message


def test_several_audiences_rejected_for_oidc(keys):
    report = check(mint(keys["rsa"], aud=["convex", "other"]), [OIDC])
    assert report.chosen is not None and not report.accepted
    assert "several_audiences" in codes(report.chosen.verification)


def test_access_token_typ(keys):
    report = check(mint(keys["rsa"], headers={"typ": "at+jwt"}), [OIDC])
    assert "access_token" in codes(report.chosen.verification) and not report.accepted


def test_es256_on_oidc_provider(keys):
    report = check(mint(keys["ec"], "ES256"), [OIDC])
    problem = report.chosen.verification[0]
    assert problem.code == "alg_not_allowed" and "RS256 and EdDSA" in problem.message
    assert check(mint(keys["ec"], "ES256"), [custom_jwt(algorithm="ES256")]).accepted


def test_custom_jwt_rules(keys):
    no_kid = check(mint(keys["rsa"], kid=None), [custom_jwt()])
    assert codes(no_kid.chosen.verification) == ["kid_missing"] and not no_kid.accepted
    wrong_alg = check(mint(keys["ec"], "ES256"), [custom_jwt()])
    assert codes(wrong_alg.chosen.verification) == ["wrong_algorithm"]
    no_sub_exp = check(mint(keys["rsa"], sub=None, exp=None, aud=None), [custom_jwt()])
    assert codes(no_sub_exp.chosen.verification) == ["sub_missing", "exp_missing"]
    with_app = check(mint(keys["rsa"], aud="other"), [custom_jwt(applicationID="convex")])
    assert with_app.chosen is None and codes(with_app.checks[0].selection) == ["aud_mismatch"]


def test_clock_skew_and_expiry(keys):
    token = mint(keys["rsa"], iat=NOW - 3600, exp=NOW - 3)
    skewed = check(token, [custom_jwt()])
    assert skewed.accepted and codes(skewed.chosen.verification) == ["clock_skew"]
    report = T.diagnose(token, providers=[custom_jwt()], verify=False, now=NOW)
    assert report.status == T.STATUS_EXPIRED and report.valid  # honest badge, accepted by the leeway
    assert "still accepted by Convex's 5 s leeway (customJwt)" in T.leeway_note(report.match.chosen.problems)
    oidc = check(token, [OIDC])  # OIDC: no leeway on exp
    assert not oidc.accepted and codes(oidc.chosen.verification) == ["expired"]
    expired = check(token, [custom_jwt()], now=NOW + 10)
    assert not expired.accepted and codes(expired.chosen.verification) == ["expired"]
    future = check(mint(keys["rsa"], nbf=NOW + 120), [custom_jwt()])
    assert codes(future.chosen.verification) == ["not_yet_valid"]
    typ = check(mint(keys["rsa"], headers={"typ": "dpop+jwt"}), [OIDC])
    assert "unsupported_typ" in codes(typ.chosen.verification)


def test_first_matching_provider_is_chosen(keys):
    providers = [{"domain": "elsewhere.example", "applicationID": "convex"},
                 {"domain": "https://issuer.example", "applicationID": "convex"},
                 custom_jwt()]
    report = check(mint(keys["rsa"]), providers)
    assert report.chosen.index == 1 and report.accepted
    assert [c.selected for c in report.checks] == [False, True, True]


def test_no_providers_configured(keys):
    report = check(mint(keys["rsa"]), [])
    assert not report.accepted and "no providers configured" in report.summary


def test_diagnose_custom_jwt_uses_provider_jwks_strictly(server, keys):
    url = server.json("/strict/jwks", {"keys": [jwk(keys["rsa"], "k1", "RS256")]}, content_type="text/plain")
    report = T.diagnose(mint(keys["rsa"], now=time.time()), providers=[custom_jwt(jwks=url)])
    assert report.identity_kind == "customJwt"
    assert not report.valid and report.verification.error.code == "jwks_content_type"


# ---------------------------------------------------------------------------
# UserIdentity


def test_oidc_identity_mapping():
    claims = {
        "iss": "https://issuer.example", "sub": "user_1", "aud": "convex", "exp": NOW, "iat": NOW,
        "jti": "j", "nbf": NOW, "fva": [1, 2], "name": "Ada", "given_name": "Ada", "family_name": "L",
        "nickname": "al", "preferred_username": "ada", "profile": "p", "picture": "pic", "website": "w",
        "email": "a@b.c", "email_verified": True, "gender": "f", "birthdate": "1815-12-10",
        "zoneinfo": "Europe/London", "locale": "en", "phone_number": "+44", "phone_number_verified": False,
        "address": {"formatted": "London"}, "updated_at": 0, "org": {"role": "admin"}, "azp": "app",
    }
    identity = T.user_identity_from_claims(claims, "oidc")
    assert identity["tokenIdentifier"] == "https://issuer.example|user_1"
    assert identity["subject"] == "user_1" and identity["issuer"] == "https://issuer.example"
    expected = {"name": "Ada", "givenName": "Ada", "familyName": "L", "nickname": "al", "preferredUsername": "ada",
                "profileUrl": "p", "pictureUrl": "pic", "websiteUrl": "w", "email": "a@b.c",
                "emailVerified": True, "gender": "f", "birthday": "1815-12-10", "timezone": "Europe/London",
                "language": "en", "phoneNumber": "+44", "phoneNumberVerified": False, "address": "London",
                "updatedAt": "1970-01-01T00:00:00+00:00"}
    for key, value in expected.items():
        assert identity[key] == value, key
    assert identity["org"] == {"role": "admin"}
    for dropped in ("jti", "nbf", "fva", "given_name", "sub", "iss", "exp", "picture", "updated_at"):
        assert dropped not in identity


def test_oidc_identity_drops_claims_the_oidc_library_consumes():
    consumed = {"aud": "convex", "iat": NOW, "auth_time": NOW, "nonce": "n", "acr": "1", "amr": ["pwd"],
                "azp": "app", "at_hash": "h", "c_hash": "c"}
    identity = T.user_identity_from_claims({"iss": "https://i", "sub": "s", "exp": NOW, "team": "a", **consumed}, "oidc")
    assert identity == {"tokenIdentifier": "https://i|s", "subject": "s", "issuer": "https://i", "team": "a"}


def test_providers_algorithm_json_quotes_are_stripped():
    raw = [{"type": "customJwt", "issuer": "https://i", "jwks": "https://i/jwks", "algorithm": '"RS256"'},
           {"type": "customJwt", "issuer": "https://i", "jwks": "https://i/jwks", "algorithm": "ES256"}]
    assert [p.algorithm for p in T.parse_providers(raw)] == ["RS256", "ES256"]


def test_masking_does_not_import_crypto():
    import subprocess
    import sys

    code = ("import sys, console.tokens as T; T.mask_token('x' * 40); T.mask_secret('a|' + 'b' * 20); "
            "print(','.join(m for m in ('jwt', 'cryptography', 'httpx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_custom_jwt_identity_flattens():
    claims = {"iss": "https://i", "sub": "s", "aud": "a", "exp": 1, "iat": 1, "nbf": 1, "jti": "j",
              "email": "x@y", "name": "N", "fva": [1], "properties": {"email": "p@q", "deep": {"n": 2}},
              "roles": ["a", "b"]}
    identity = T.user_identity_from_claims(claims, "customJwt")
    assert identity == {"tokenIdentifier": "https://i|s", "subject": "s", "issuer": "https://i",
                        "email": "x@y", "name": "N", "properties.email": "p@q", "properties.deep.n": 2,
                        "roles": ["a", "b"]}
    with pytest.raises(ValueError):
        T.user_identity_from_claims(claims, "saml")


def test_masking():
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.abcdWXYZ"
    assert T.mask_token(token) == "eyJhbGciOi…WXYZ"
    assert T.mask_token("short") == "sho…" and T.mask_token("") == ""
    assert T.mask_secret("prod:happy-otter-123|0123456789abcdefa1b2") == "prod:happy-otter-123|••••a1b2"
    assert T.mask_secret("local-instance|" + "f" * 60 + "beef") == "local-instance|••••beef"
    assert T.mask_secret("tiny") == "••••"


# ---------------------------------------------------------------------------
# CLI


def run_cli(argv, stdin_text="", env=None, monkeypatch=None):
    out, err = io.StringIO(), io.StringIO()
    code = token_cli.main(argv, stdin=io.StringIO(stdin_text), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_decode_exit_codes(keys):
    now = time.time()
    good = mint(keys["rsa"], now=now, email="a@b.c")
    code, out, _ = run_cli(["decode", good])
    assert code == 0 and "Status    VALID" in out and "expires in 59 min" in out
    assert good not in out and T.mask_token(good) in out and '"email": "a@b.c"' in out
    code, out, _ = run_cli(["token", "decode", mint(keys["rsa"], now=now - 7200)])
    assert code == 1 and "EXPIRED" in out and "expired 1 h ago" in out
    code, out, _ = run_cli(["decode", "-"], stdin_text="not-a-token\n")
    assert code == 1 and "not_a_jwt" in out
    code, out, _ = run_cli(["decode", "--json", good])
    assert code == 0 and json.loads(out)["valid"] is True


def test_cli_usage_errors():
    assert run_cli([])[0] == 2
    assert run_cli(["decode"])[0] == 2
    assert run_cli(["frobnicate", "x"])[0] == 2
    code, _, err = run_cli(["verify", "--secret-env", "CONVEX_CONSOLE_TEST_UNSET_VAR", "a.b.c"])
    assert code == 2 and "CONVEX_CONSOLE_TEST_UNSET_VAR" in err
    code, _, err = run_cli(["verify", "--key", "/nonexistent/key.pem", "a.b.c"])
    assert code == 2 and "cannot read" in err
    code, _, err = run_cli(["verify", "--jwks", "x", "--key", "y", "a.b.c"])
    assert code == 2
    assert run_cli(["mint"])[0] == 2  # delegated to console.token_mint: --sub is required


def test_cli_verify_with_jwks_and_key(server, keys, tmp_path):
    now = time.time()
    url = server.json("/cli/jwks", {"keys": [jwk(keys["rsa"], "k1", "RS256")]})
    code, out, _ = run_cli(["verify", "--jwks", url, mint(keys["rsa"], now=now)])
    assert code == 0 and "Signature OK" in out and "Result    VALID" in out
    code, out, _ = run_cli(["verify", "--jwks", url, mint(keys["rsa"], kid="old", now=now)])
    assert code == 1 and "No key with kid 'old'" in out
    key_file = tmp_path / "key.pem"
    key_file.write_text(pem(keys["rsa_other"]))
    code, out, _ = run_cli(["verify", "--key", str(key_file), mint(keys["rsa"], now=now)])
    assert code == 1 and "Signature mismatch" in out


def test_cli_verify_against_deployment(server, keys, monkeypatch):
    issuer = server.issuer("dep", [jwk(keys["rsa"], "k1", "RS256")])
    seen = {}

    def list_providers(handler):
        seen["auth"] = handler.headers.get("Authorization")
        providers = [{"domain": issuer, "applicationID": "convex"}]
        return json.dumps({"status": "success", "value": values.encode(providers)}).encode()

    server.routes["/api/query"] = (200, "application/json", list_providers)
    monkeypatch.setenv("TEST_ADMIN_KEY", "local|secret-admin-key")
    now = time.time()
    code, out, _ = run_cli(["verify", "--deployment", server.base, "--admin-key-env", "TEST_ADMIN_KEY",
                            mint(keys["rsa"], iss=issuer, now=now)])
    assert code == 0, out
    assert seen["auth"] == "Convex local|secret-admin-key" and "secret-admin-key" not in out
    assert "Accepted by provider #1" in out and "UserIdentity (oidc)" in out
    code, out, _ = run_cli(["verify", "--url", server.base, "--admin-key-env", "TEST_ADMIN_KEY",  # same as --deployment
                            mint(keys["rsa"], iss=issuer, aud="web", now=now)])
    assert code == 1 and "Result    INVALID: No auth provider found matching the given token" in out
    assert "aud is 'web', not the provider's applicationID 'convex'" in out
    monkeypatch.delenv("TEST_ADMIN_KEY")
    for name in token_cli.ADMIN_KEY_ENV_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    assert run_cli(["verify", "--deployment", server.base, mint(keys["rsa"], now=now)])[0] == 2


def test_hints_without_a_deployment(keys):
    report = T.diagnose(mint(keys["ec"], "ES256", kid=None, aud=["a", "b"], sub=None,
                             headers={"typ": "at+jwt"}, now=time.time()), verify=False)
    found = {p.code: p.severity for p in report.problems}
    assert found == {"es256_custom_only": T.INFO, "access_token": T.WARNING, "several_audiences": T.WARNING,
                     "sub_missing": T.WARNING, "kid_missing": T.INFO}
    assert report.valid  # hints alone do not make a decodable, unexpired token invalid
    hs = T.diagnose(jwt.encode({"sub": "x", "iss": "i", "exp": time.time() + 60}, "k" * 32, algorithm="HS256"),
                    verify=False)
    assert "alg_not_allowed" in codes(hs.problems)


def test_token_without_kid_tries_matching_keys(server, keys):
    url = server.json("/nokid/jwks", {"keys": [jwk(keys["ec"], "c1", "ES256"), jwk(keys["rsa"], "r1", "RS256")]})
    result = T.verify_token(T.decode_token(mint(keys["rsa"], kid=None)), T.KeySource(jwks_url=url))
    assert result.ok and result.kid == "r1" and codes(result.problems) == ["kid_missing"]


from hypothesis import given, settings, strategies as st  # noqa: E402


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)), max_leaves=8)
claim_names = st.sampled_from(["alg", "kid", "typ", "iss", "sub", "aud", "exp", "nbf", "iat", "address",
                               "updated_at", "email", "x"])
json_objects = st.dictionaries(claim_names, json_values, max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.text(max_size=200),
    st.lists(st.text(alphabet="ABCabc012-_+/=.{}\"", max_size=40), min_size=1, max_size=6).map(".".join),
    st.lists(st.binary(max_size=30).map(b64url), min_size=3, max_size=3).map(".".join),
    st.tuples(json_objects, json_objects, st.binary(max_size=8)).map(
        lambda parts: ".".join([b64url(json.dumps(parts[0]).encode()), b64url(json.dumps(parts[1]).encode()),
                                b64url(parts[2])])),
))
def test_decode_never_crashes(text):
    try:
        decoded = T.decode_token(text)
    except T.TokenError as error:
        assert error.code and error.message
    else:
        T.describe_time_claims(decoded.claims, now=NOW)
        T.match_providers(decoded, [OIDC, custom_jwt()], now=NOW)
        T.user_identity_from_claims(decoded.claims, "oidc")
        T.user_identity_from_claims(decoded.claims, "customJwt")
        assert T.verify_token(decoded, T.KeySource(secret="s" * 32)) is not None


def test_verify_with_cached_jwks(keys):
    keys_list = [jwk(keys["rsa"], "k1", "RS256")]
    assert T.verify_with_jwks(T.decode_token(mint(keys["rsa"])), keys_list).ok
    assert T.verify_with_jwks(T.decode_token(mint(keys["rsa"], kid="x")), keys_list).error.code == "unknown_kid"
    none_token = b64url(b'{"alg":"none"}') + "." + b64url(b"{}") + "."
    assert T.verify_with_jwks(T.decode_token(none_token), keys_list).error.code == "alg_none"


def test_cli_mint_is_delegated_and_decodes(tmp_path, capsys):
    pytest.importorskip("console.token_mint")
    assert token_cli.main(["mint", "--sub", "user_9", "--data-dir", str(tmp_path)]) == 0
    minted = capsys.readouterr().out.strip()
    code, out, _ = run_cli(["decode", minted])
    assert code == 0 and '"sub": "user_9"' in out and '"aud": "convex"' in out


def test_key_source_from_text(keys, tmp_path):
    assert T.key_source_from_text("  ")[0] is None
    assert T.key_source_from_text("https://x.example/jwks")[0] == T.KeySource(jwks_url="https://x.example/jwks")
    assert T.key_source_from_text("data:application/json,{}")[0].jwks_url.startswith("data:")
    assert T.key_source_from_text(pem(keys["rsa"]))[0].pem.startswith("-----BEGIN PUBLIC KEY")
    jwks_source, _ = T.key_source_from_text(json.dumps(jwk(keys["rsa"], "k1", "RS256")))  # one JWK
    assert T.verify_token(T.decode_token(mint(keys["rsa"])), jwks_source).ok
    source, description = T.key_source_from_text("env:KEY_VAR", environ={"KEY_VAR": "s3cret"})
    assert source.secret == "s3cret" and "s3cret" not in description
    assert T.key_source_from_text("secret:abc")[0].secret == "abc"
    key_file = tmp_path / "key.pem"
    key_file.write_text(pem(keys["rsa"]))
    source, description = T.key_source_from_text(str(key_file))
    assert source.pem and str(key_file) in description
    for bad, message in (("env:NOPE_UNSET", "not set"), ("/no/such.pem", "No such file"), ("{oops", "not"),
                         ('{"a": 1}', "expected a JWKS")):
        with pytest.raises(ValueError, match=message):
            T.key_source_from_text(bad, environ={})


def test_extra_prefix_and_token_files():
    good = mint(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(T.TokenError) as error:
        T.decode_token("5" + good)
    assert error.value.code == "extra_prefix" and "'5'" in error.value.message
    assert T.token_from_file_text(json.dumps({"token": good, "issuer": "x"})) == good
    assert T.token_from_file_text(json.dumps({"id_token": good})) == good
    assert T.token_from_file_text(f"  {good}\n") == good


def test_mint_and_verify_take_both_url_spellings(capsys, monkeypatch):
    from console import token_mint

    monkeypatch.delenv("CONVEX_SELF_HOSTED_ADMIN_KEY", raising=False)
    # --deployment is accepted by mint (argparse would exit 2): it fails later, on the missing key.
    assert token_mint.main(["--sub", "u", "--deployment", "http://127.0.0.1:9"]) == 1
    assert "CONVEX_SELF_HOSTED_ADMIN_KEY" in capsys.readouterr().err
    parser = token_cli._build_parser()
    for spelling in ("--url", "--deployment"):
        assert parser.parse_args(["verify", "x.y.z", spelling, "http://a.example"]).deployment == "http://a.example"
