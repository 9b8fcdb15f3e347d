"""Admin keys and the `Authorization` header, as a self-hosted Convex backend treats them.

Key format `<instance_name>|<hex secret>` (self-hosted); one key per data dir, stored 0600.
Header forms (PROTOCOL §1.4): `Convex <key>`, `Convex <key>:<base64 identity JSON>`,
`Bearer <jwt>`; with no header, the `?adminKey=` query parameter.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from console.emulator.errors import ApiError
from console.emulator.identity import Identity

KEY_FILE_NAME = "admin_key"
_TYPE_PREFIXES = ("prod:", "dev:", "preview:", "project:", "local:")


def generate_admin_key(instance_name: str) -> str:
    return f"{instance_name}|{secrets.token_hex(32)}"


def load_or_create_admin_key(data_dir: Path, instance_name: str) -> str:
    """The data dir's key, created on first use with mode 0600."""
    path = Path(data_dir) / KEY_FILE_NAME
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    key = generate_admin_key(instance_name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    os.chmod(path, 0o600)
    return key


def redact_key(key: str) -> str:
    """A form safe for logs: the instance name and the last 4 characters."""
    name, _, secret = key.partition("|")
    return f"{name}|…{secret[-4:]}" if secret else "…"


def remove_type_prefix(key: str) -> str:
    """`prod:name|secret` -> `name|secret` (AdminKey::remove_type_prefix)."""
    head, bar, tail = key.partition("|")
    if not bar:
        return key
    for prefix in _TYPE_PREFIXES:
        if head.startswith(prefix):
            return head.rsplit(":", 1)[-1] + bar + tail
    return key


def keys_equal(expected: str, candidate: str) -> bool:
    return hmac.compare_digest(expected.encode(), candidate.encode())


# --- the Authorization header ------------------------------------------------------------


@dataclass(frozen=True)
class AuthToken:
    """What the header carried: kind "none" | "admin" | "user" (a Bearer JWT)."""

    kind: str
    secret: str | None = None  # the admin key or the JWT; never logged
    acting_as: dict | None = None

    def __repr__(self) -> str:
        return f"AuthToken(kind={self.kind!r}, acting_as={self.acting_as is not None})"


def _malformed_header() -> ApiError:
    return ApiError(400, "HeaderParseFailure", "Malformed Authorization header.")


def _strip_prefix(text: str, prefix: str) -> str | None:
    if len(text) >= len(prefix) and text[: len(prefix)].lower() == prefix:
        return text[len(prefix):]
    return None


def _parse_admin_value(value: str) -> AuthToken:
    key = remove_type_prefix(value)
    key, colon, acting_b64 = key.partition(":")
    if not colon:
        return AuthToken("admin", key)
    try:
        raw = base64.b64decode(acting_b64.strip(), validate=False)
        attrs = json.loads(raw)
    except (binascii.Error, ValueError):
        raise _malformed_header() from None
    if not isinstance(attrs, dict):
        raise _malformed_header()
    return AuthToken("admin", key, attrs)


def parse_authorization(header: str | None, query: Mapping[str, str]) -> AuthToken:
    """Parse the header (or `?adminKey=`) as Convex's `ExtractAuthenticationToken` does."""
    if header is not None:
        if len(header) < 7:
            raise ApiError(400, "InvalidHeaderFailure", "Invalid authentication header")
        admin_value = _strip_prefix(header, "convex ")
        if admin_value is not None:
            return _parse_admin_value(admin_value)
        if len(header) <= 7 or header[:7].lower() != "bearer ":
            raise ApiError(400, "InvalidAdminKey", "Invalid admin key")
        return AuthToken("user", header[7:].strip())
    admin_key = query.get("adminKey")
    if admin_key is not None:
        return AuthToken("admin", admin_key)
    return AuthToken("none")


def bad_key_error(instance_name: str) -> ApiError:
    return ApiError(
        403,
        "BadDeployKey",
        f"The provided deploy key was invalid for deployment '{instance_name}'. Double check "
        "that the environment this key was generated for matches the desired deployment.",
    )


def _jwt_payload(token: str) -> dict:
    try:
        payload_b64 = token.split(".")[1]
        payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
        if not isinstance(payload, dict):
            raise ValueError("not an object")
        return payload
    except (IndexError, ValueError, binascii.Error):
        raise ApiError(
            401,
            "InvalidAuthHeader",
            "Could not parse JWT payload. Check that the token is a valid JWT format with "
            "three base64-encoded parts separated by dots.",
        ) from None


def no_provider_message(providers: list[dict]) -> str:
    """`enhance_no_provider_error` in Convex's authentication crate."""
    if not providers:
        return (
            "No auth provider found matching the given token (no providers configured). "
            "Check convex/auth.config.ts."
        )
    described = []
    for provider in providers:
        if provider.get("type") == "customJwt":
            app_id = provider.get("applicationID") or "none"
            described.append(f"CustomJWT(issuer={provider.get('issuer')}, app_id={app_id})")
        else:
            described.append(
                f"OIDC(domain={provider.get('domain')}, app_id={provider.get('applicationID')})"
            )
    return (
        "No auth provider found matching the given token. Check that your JWT's issuer and "
        f"audience match one of your configured providers: [{', '.join(described)}]"
    )


# A verifier, installed by the auth part: (jwt, payload, providers) -> Identity; raises ApiError.
TokenVerifier = Callable[[str, dict, list], Identity]


class AdminAuth:
    """Turns an `AuthToken` into an `Identity` for one deployment."""

    def __init__(self, admin_key: str, instance_name: str):
        self._admin_key = admin_key
        self.instance_name = instance_name
        self.token_verifier: TokenVerifier | None = None
        self.providers: Callable[[], list] = lambda: []

    def is_admin_key(self, candidate: str) -> bool:
        return keys_equal(remove_type_prefix(self._admin_key), remove_type_prefix(candidate))

    def identity_for(self, token: AuthToken) -> Identity:
        if token.kind == "none":
            return Identity.anonymous()
        if token.kind == "admin":
            if not self.is_admin_key(token.secret or ""):
                raise bad_key_error(self.instance_name)
            if token.acting_as is None:
                return Identity.admin()
            try:
                return Identity.acting_as(token.acting_as)
            except ValueError:
                raise _malformed_header() from None
        return self._user_identity(token.secret or "")

    def _user_identity(self, jwt: str) -> Identity:
        payload = _jwt_payload(jwt)
        if "iss" not in payload:
            raise ApiError(
                401,
                "InvalidAuthHeader",
                "Missing issuer claim ('iss') in JWT payload. The JWT must include an 'iss' "
                "claim that matches one of your configured auth providers.",
            )
        providers = list(self.providers() or [])
        if self.token_verifier is not None and providers:
            return self.token_verifier(jwt, payload, providers)
        raise ApiError(401, "NoAuthProvider", no_provider_message(providers))

    def authenticate(self, header: str | None, query: Mapping[str, str]) -> Identity:
        return self.identity_for(parse_authorization(header, query))

    def require_admin(self, identity: Identity) -> None:
        if not identity.is_admin:
            raise bad_key_error(self.instance_name)
