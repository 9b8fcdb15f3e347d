"""Auth providers as `auth.config.ts` declares them (PROTOCOL §6): parsing and normalisation.

OIDC `{domain, applicationID}` and `{type: "customJwt", issuer, jwks, algorithm, applicationID?}`
(`parse_provider`); `DEV_ISSUER` is the symbolic issuer resolved to the emulator's built-in one.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from console.emulator.errors import ApiError
# The symbolic `domain`/`issuer` meaning "the emulator's built-in issuer" in an auth config.
DEV_ISSUER = "<emulator-dev-issuer>"
CUSTOM_JWT_ALGORITHMS = ("RS256", "ES256")

# --- providers ---------------------------------------------------------------------------

_SCHEME = re.compile(r"^\w+://")


def _invalid_domain(original: str, reason: str) -> ApiError:
    return ApiError(
        400, "InvalidProviderDomainUrl", f'Invalid provider domain URL "{original}": {reason}'
    )


def _looks_like_tld(host: str) -> bool:
    # Convex checks the public TLD list; an alphabetic last label of 2+ letters approximates it.
    if host == "localhost":
        return True
    _, dot, last = host.rpartition(".")
    return bool(dot) and last.isalpha() and len(last) >= 2


def normalize_issuer_url(original: str) -> str:
    """`deserialize_issuer_url`: add `https://` when there is no scheme; must look like a URL."""
    if not isinstance(original, str):
        raise ApiError(400, "InvalidAuthConfig", "Auth provider domain/issuer must be a string")
    if original.startswith('"'):
        raise _invalid_domain(original, 'starts with a double quote (")')
    had_scheme = bool(_SCHEME.match(original))
    url = original if had_scheme else f"https://{original}"
    try:
        parsed = urllib.parse.urlsplit(url)
        host = parsed.hostname
        parsed.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as error:
        raise _invalid_domain(original, str(error)) from None
    if parsed.scheme not in ("http", "https"):
        raise _invalid_domain(original, "scheme should be http or https")
    if not host:
        raise _invalid_domain(original, "empty host")
    if not had_scheme and not _looks_like_tld(host):
        raise _invalid_domain(
            original,
            "Does not look like a URL (must have a scheme or end with a top-level domain)",
        )
    return url


def _with_protocol(issuer: str) -> str:
    if issuer.startswith("https://") or issuer.startswith("http://"):
        return issuer
    return f"https://{issuer}"


@dataclass(frozen=True)
class AuthProvider:
    """One configured provider, stored as Convex stores it (`AuthInfo`)."""

    kind: str  # "oidc" | "customJwt"
    issuer: str  # the OIDC `domain` or the customJwt `issuer`, normalised
    application_id: str | None
    jwks: str | None = None
    algorithm: str | None = None

    def matches(self, audiences: list[str], token_issuer: str) -> bool:
        """`AuthInfo::matches_token`."""
        if self.application_id is not None and self.application_id not in audiences:
            return False
        return self.issuer.rstrip("/") == _with_protocol(token_issuer).rstrip("/")

    def describe(self) -> str:
        if self.kind == "oidc":
            return f"OIDC(domain={self.issuer}, app_id={self.application_id})"
        return f"CustomJWT(issuer={self.issuer}, app_id={self.application_id or 'none'})"

    def to_document(self) -> dict:
        """The `_auth` row fields (`AuthInfoPersisted`); `algorithm` is JSON-quoted there."""
        if self.kind == "oidc":
            return {"applicationID": self.application_id, "domain": self.issuer}
        return {
            "type": "customJwt",
            "applicationID": self.application_id,
            "issuer": self.issuer,
            "jwks": self.jwks,
            "algorithm": json.dumps(self.algorithm),
        }


def _resolve_symbolic(value: Any, dev_issuer_url: str | None) -> Any:
    if value == DEV_ISSUER:
        if dev_issuer_url is None:
            raise ApiError(400, "InvalidAuthConfig", "The built-in issuer has no URL yet")
        return dev_issuer_url
    return value


def _parse_algorithm(value: Any) -> str:
    text = value.strip('"') if isinstance(value, str) else value
    if text not in CUSTOM_JWT_ALGORITHMS:
        raise ApiError(
            400,
            "InvalidSignatureAlgorithm",
            f"Invalid signature algorithm (only RS256 and ES256 are supported): {value}",
        )
    return text


def parse_provider(raw: Any, *, dev_issuer_url: str | None = None) -> AuthProvider:
    """An `auth.config.ts` provider object -> `AuthProvider` (raises ApiError 400)."""
    if not isinstance(raw, dict):
        raise ApiError(400, "InvalidAuthConfig", f"Auth provider must be an object: {raw!r}")
    kind = raw.get("type", "oidc")
    app_id = raw.get("applicationID")
    if app_id is not None and not isinstance(app_id, str):
        raise ApiError(400, "InvalidAuthConfig", "applicationID must be a string")
    if kind == "customJwt":
        issuer = normalize_issuer_url(_resolve_symbolic(raw.get("issuer"), dev_issuer_url))
        jwks = _resolve_symbolic(raw.get("jwks"), dev_issuer_url)
        if jwks == dev_issuer_url and dev_issuer_url is not None:
            jwks = dev_issuer_url + "/.well-known/jwks.json"
        if not isinstance(jwks, str):
            raise ApiError(400, "InvalidAuthConfig", "customJwt providers need a `jwks` string")
        algorithm = _parse_algorithm(raw.get("algorithm"))
        return AuthProvider("customJwt", issuer, app_id, jwks, algorithm)
    if kind != "oidc":
        raise ApiError(400, "InvalidAuthConfig", f"Unknown auth provider type: {kind!r}")
    if app_id is None:
        raise ApiError(400, "InvalidAuthConfig", "OIDC providers need an `applicationID`")
    domain = normalize_issuer_url(_resolve_symbolic(raw.get("domain"), dev_issuer_url))
    return AuthProvider("oidc", domain, app_id)


def parse_providers(raws: list, *, dev_issuer_url: str | None = None) -> list[AuthProvider]:
    return [parse_provider(raw, dev_issuer_url=dev_issuer_url) for raw in raws or []]


def app_provider_configs(app: Any) -> list:
    """The raw provider list of an app: its `auth_config` module's `providers` (or a dict/list)."""
    config = getattr(app, "auth_config", None) if app is not None else None
    if config is None:
        return []
    if isinstance(config, (list, tuple)):
        return list(config)
    if isinstance(config, dict):
        return list(config.get("providers") or [])
    providers = getattr(config, "providers", None)
    if providers is None:
        default = getattr(config, "default", None) or getattr(config, "config", None)
        if isinstance(default, dict):
            providers = default.get("providers")
    return list(providers or [])
