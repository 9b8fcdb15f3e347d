"""Admin keys and Authorization header parsing (admin.py), without a server."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from console.emulator import admin
from console.emulator.errors import ApiError


def test_key_format_and_file_mode(tmp_path):
    key = admin.load_or_create_admin_key(tmp_path, "my-instance")
    name, _, secret = key.partition("|")
    assert name == "my-instance" and len(secret) == 64 and int(secret, 16) >= 0
    assert stat.S_IMODE(os.stat(tmp_path / admin.KEY_FILE_NAME).st_mode) == 0o600
    assert admin.load_or_create_admin_key(tmp_path, "my-instance") == key
    assert admin.generate_admin_key("x") != admin.generate_admin_key("x")


def test_redaction_never_shows_the_secret():
    key = admin.generate_admin_key("inst")
    redacted = admin.redact_key(key)
    assert key.split("|")[1] not in redacted and redacted.startswith("inst|")


@pytest.mark.parametrize(
    "header, kind, acting",
    [
        ("Convex inst|abc", "admin", None),
        ("convex inst|abc", "admin", None),
        ("CONVEX prod:inst|abc", "admin", None),
        ("Bearer  a.b.c ", "user", None),
        ("bearer a.b.c", "user", None),
    ],
)
def test_parse_header_forms(header, kind, acting):
    token = admin.parse_authorization(header, {})
    assert token.kind == kind and token.acting_as == acting
    if kind == "user":
        assert token.secret == "a.b.c"
    else:
        assert admin.remove_type_prefix(token.secret) == "inst|abc"


def test_acting_as_identity_and_type_prefix():
    attrs = {"subject": "u1", "issuer": "https://i", "name": "Ada"}
    encoded = base64.b64encode(json.dumps(attrs).encode()).decode()
    token = admin.parse_authorization(f"Convex dev:inst|abc:{encoded}", {})
    assert token.secret == "inst|abc" and token.acting_as == attrs
    auth = admin.AdminAuth("inst|abc", "inst")
    identity = auth.identity_for(token)
    assert identity.is_admin and identity.user_attributes["tokenIdentifier"] == "https://i|u1"


def test_query_param_only_without_header():
    assert admin.parse_authorization(None, {"adminKey": "k"}).kind == "admin"
    assert admin.parse_authorization("Convex inst|x", {"adminKey": "k"}).secret == "inst|x"
    assert admin.parse_authorization(None, {}).kind == "none"


@pytest.mark.parametrize(
    "header, status, code",
    [
        ("short", 400, "InvalidHeaderFailure"),
        ("Token abcdefgh", 400, "InvalidAdminKey"),
        ("Convex inst|abc:!!!", 400, "HeaderParseFailure"),
        ("Convex inst|abc:" + base64.b64encode(b"[1]").decode(), 400, "HeaderParseFailure"),
    ],
)
def test_malformed_headers(header, status, code):
    with pytest.raises(ApiError) as raised:
        admin.AdminAuth("inst|abc", "inst").authenticate(header, {})
    assert (raised.value.status, raised.value.code) == (status, code)


def test_wrong_key_is_403_and_anonymous_is_allowed():
    auth = admin.AdminAuth("inst|abc", "inst")
    with pytest.raises(ApiError) as raised:
        auth.authenticate("Convex inst|abd", {})
    assert raised.value.status == 403 and raised.value.code == "BadDeployKey"
    assert "deployment 'inst'" in raised.value.message
    assert auth.authenticate(None, {}).kind == "anonymous"
    with pytest.raises(ApiError):
        auth.require_admin(auth.authenticate(None, {}))


def test_bearer_goes_to_the_verifier_when_providers_exist():
    auth = admin.AdminAuth("inst|abc", "inst")
    payload = base64.urlsafe_b64encode(json.dumps({"iss": "https://issuer"}).encode()).rstrip(b"=").decode()
    seen = {}

    def verifier(jwt, claims, providers):
        seen.update(jwt=jwt, claims=claims, providers=providers)
        raise ApiError(401, "InvalidAuthHeader", "checked")

    auth.providers = lambda: [{"domain": "https://issuer", "applicationID": "convex"}]
    auth.token_verifier = verifier
    with pytest.raises(ApiError, match="checked"):
        auth.authenticate(f"Bearer h.{payload}.s", {})
    assert seen["claims"] == {"iss": "https://issuer"}
    auth.token_verifier = None
    with pytest.raises(ApiError) as raised:
        auth.authenticate(f"Bearer h.{payload}.s", {})
    assert raised.value.code == "NoAuthProvider"
    assert "configured providers: [OIDC(domain=https://issuer, app_id=convex)]" in raised.value.message
