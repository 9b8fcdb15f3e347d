"""Auth providers (PROTOCOL §6): parsing `listAuthProviders` rows, issuer normalisation, matching a
token to a provider the way Convex does, the UserIdentity mapping, and fetching a deployment's providers."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable

from console.jwt_decode import (
    CUSTOM_JWT_ALGORITHMS, DEFAULT_TIMEOUT, INFO, OIDC_ALGORITHMS, WARNING, DecodedToken, Problem, _number,
    time_problems,
)

if TYPE_CHECKING:  # imported lazily: jwt + cryptography + httpx cost ~150 ms, masking needs none
    import httpx

# ---------------------------------------------------------------------------
# Providers (the shape returned by `_system/frontend/listAuthProviders`)


@dataclass(frozen=True)
class Provider:
    kind: str  # "oidc" | "customJwt"
    issuer: str  # OIDC domain or customJwt issuer, as configured
    application_id: str | None = None
    jwks: str | None = None
    algorithm: str | None = None

    @property
    def label(self) -> str:
        if self.kind == "oidc":
            return f"OIDC(domain={self.issuer}, applicationID={self.application_id})"
        return (
            f"CustomJWT(issuer={self.issuer}, algorithm={self.algorithm}, "
            f"applicationID={self.application_id or 'none'})"
        )


def parse_providers(raw: Iterable[Any]) -> list[Provider]:
    providers = []
    for item in raw or []:
        if not isinstance(item, dict):
            raise ValueError(f"An auth provider must be an object, got {item!r}")
        if item.get("type") == "customJwt":
            providers.append(Provider(
                "customJwt", str(item.get("issuer", "")), item.get("applicationID"),
                item.get("jwks"), _unquote(item.get("algorithm")),
            ))
        else:
            providers.append(Provider("oidc", str(item.get("domain", "")), item.get("applicationID")))
    return providers


def _unquote(value: Any) -> Any:
    """Convex stores the algorithm JSON-encoded (`"\\"RS256\\""`); accept both forms."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            inner = json.loads(value)
        except ValueError:
            return value
        return inner if isinstance(inner, str) else value
    return value


def normalize_issuer(issuer: str) -> str:
    """As Convex compares issuers: add https:// when there is no scheme, strip trailing '/'."""
    issuer = issuer.strip()
    if "://" not in issuer:
        issuer = "https://" + issuer
    return issuer.rstrip("/")


def _issuer_text(raw: str) -> str:
    normalized = normalize_issuer(raw)
    return f"'{raw}'" if normalized == raw else f"'{raw}' (normalised '{normalized}')"


def _selection_problems(decoded: DecodedToken, provider: Provider) -> list[Problem]:
    """iss and aud: what Convex uses to pick a provider."""
    problems = []
    token_iss = decoded.issuer
    if token_iss is None:
        problems.append(Problem("iss_missing", "The token has no 'iss' claim, so no provider can match it."))
    elif normalize_issuer(token_iss) != normalize_issuer(provider.issuer):
        problems.append(Problem(
            "iss_mismatch",
            f"iss differs: token {_issuer_text(token_iss)} vs provider {_issuer_text(provider.issuer)}.",
        ))
    if provider.application_id:
        audiences = decoded.audiences
        clerk_hint = _clerk_hint(decoded, provider)
        if not audiences:
            problems.append(Problem(
                "aud_missing",
                f"The token has no 'aud' claim but the provider needs applicationID "
                f"'{provider.application_id}'.{clerk_hint}",
            ))
        elif provider.application_id not in audiences:
            shown = ", ".join(repr(aud) for aud in audiences)
            problems.append(Problem(
                "aud_mismatch",
                f"aud is {shown}, not the provider's applicationID '{provider.application_id}'.{clerk_hint}",
            ))
    return problems


def _clerk_hint(decoded: DecodedToken, provider: Provider) -> str:
    looks_like_clerk = "clerk" in (decoded.issuer or "") or "clerk" in provider.issuer
    if provider.application_id == "convex" or looks_like_clerk:
        return (
            " With Clerk, create a JWT template named \"convex\" (it sets aud \"convex\") and get the token "
            "with getToken({ template: \"convex\" }), or enable the Convex integration so session "
            "tokens carry aud \"convex\"."
        )
    return ""


def _verification_problems(decoded: DecodedToken, provider: Provider, now: float) -> list[Problem]:
    """What fails after the provider is chosen: algorithm, typ, kid, audiences, required claims, time."""
    problems = []
    alg = decoded.alg
    if provider.kind == "oidc":
        if alg not in OIDC_ALGORITHMS:
            problems.append(Problem(
                "alg_not_allowed",
                f"The token is signed with {alg}, but Convex accepts only RS256 and EdDSA for OIDC "
                "providers (ES256 needs a customJwt provider).",
            ))
        if len(decoded.audiences) > 1:
            problems.append(Problem(
                "several_audiences",
                f"The token has {len(decoded.audiences)} audiences {decoded.audiences}; Convex's OIDC "
                "verifier rejects tokens with several audiences.",
            ))
        if decoded.typ and decoded.typ.lower() in ("at+jwt", "application/at+jwt"):
            problems.append(Problem(
                "access_token",
                f"typ is '{decoded.typ}': this is an OAuth access token, not an OIDC ID token. "
                "Send the ID token (Auth0: getIdTokenClaims / id_token) instead.",
            ))
        else:
            problems.extend(_oidc_header_problems(decoded.header))
        for name in ("sub", "exp", "iat"):
            if name not in decoded.claims:
                problems.append(Problem(f"{name}_missing", f"The token has no '{name}' claim; OIDC ID tokens need it."))
    else:
        if provider.algorithm and alg != provider.algorithm:
            problems.append(Problem(
                "wrong_algorithm",
                f"The token is signed with {alg}, but the provider is configured for {provider.algorithm}.",
            ))
        if decoded.kid is None:
            problems.append(Problem(
                "kid_missing",
                "The header has no 'kid'; Convex needs it to pick the key from a customJwt provider's JWKS.",
            ))
        for name in ("sub", "exp"):
            if name not in decoded.claims:
                problems.append(Problem(f"{name}_missing", f"The token has no '{name}' claim; Convex requires it."))
    if alg and alg.lower() == "none":
        problems.append(Problem("alg_none", "alg 'none': unsigned tokens are always rejected."))
    problems.extend(time_problems(decoded.claims, now, kind=provider.kind))
    return problems


def _oidc_header_problems(header: dict) -> list[Problem]:
    """Header fields Convex's OIDC verifier refuses: a typ other than JWT, cty, crit."""
    problems = []
    typ = header.get("typ")
    if typ is not None:
        normalized = str(typ).lower()
        normalized = normalized if "/" in normalized else "application/" + normalized
        if normalized != "application/jwt":
            problems.append(Problem(
                "unsupported_typ", f"typ is {typ!r}; Convex's OIDC verifier accepts only 'JWT' (or no typ)."
            ))
    if "cty" in header:
        problems.append(Problem("unsupported_cty", f"The header has cty {header['cty']!r}; OIDC ID tokens must not."))
    if "crit" in header:
        problems.append(Problem("unsupported_crit", "The header has 'crit' fields; Convex's OIDC verifier refuses them."))
    return problems


def convex_compatibility_hints(decoded: DecodedToken) -> list[Problem]:
    """Without a deployment to match: what would stop any Convex provider from taking the token."""
    hints = []
    alg = decoded.alg
    if alg and alg.lower() != "none" and alg not in OIDC_ALGORITHMS + CUSTOM_JWT_ALGORITHMS:
        hints.append(Problem(
            "alg_not_allowed",
            f"Convex accepts RS256/EdDSA (OIDC) and RS256/ES256 (customJwt); no provider takes {alg}.", WARNING,
        ))
    elif alg == "ES256":
        hints.append(Problem("es256_custom_only", "ES256 works only with a customJwt provider, not OIDC.", INFO))
    if decoded.typ and decoded.typ.lower() in ("at+jwt", "application/at+jwt"):
        hints.append(Problem(
            "access_token", f"typ is '{decoded.typ}': an OAuth access token; Convex OIDC providers need the ID token.",
            WARNING,
        ))
    if len(decoded.audiences) > 1:
        hints.append(Problem(
            "several_audiences", "Several audiences: Convex's OIDC verifier rejects such tokens.", WARNING
        ))
    for name in ("sub", "exp", "iss"):
        if name not in decoded.claims:
            hints.append(Problem(f"{name}_missing", f"No '{name}' claim: Convex requires it.", WARNING))
    if decoded.kid is None:
        hints.append(Problem("kid_missing", "No 'kid' in the header: customJwt providers require one.", INFO))
    return hints


@dataclass
class ProviderCheck:
    index: int
    provider: Provider
    selection: list[Problem]
    verification: list[Problem]

    @property
    def selected(self) -> bool:
        return not any(problem.is_error for problem in self.selection)

    @property
    def problems(self) -> list[Problem]:
        return self.selection + self.verification

    @property
    def accepted(self) -> bool:
        return self.selected and not any(problem.is_error for problem in self.verification)


@dataclass
class MatchReport:
    checks: list[ProviderCheck]

    @property
    def chosen(self) -> ProviderCheck | None:
        """Convex takes the first provider whose iss and aud match, and then verifies only it."""
        return next((check for check in self.checks if check.selected), None)

    @property
    def accepted(self) -> bool:
        return self.chosen is not None and self.chosen.accepted

    @property
    def summary(self) -> str:
        if not self.checks:
            return "No auth provider found matching the given token (no providers configured)."
        chosen = self.chosen
        if chosen is None:
            labels = ", ".join(check.provider.label for check in self.checks)
            return f"No auth provider found matching the given token. Configured: [{labels}]"
        if chosen.accepted:
            return f"Accepted by provider #{chosen.index + 1}: {chosen.provider.label}"
        first = next(problem for problem in chosen.verification if problem.is_error)
        return f"Provider #{chosen.index + 1} ({chosen.provider.label}) matches iss/aud but rejects it: {first.message}"


def match_providers(decoded: DecodedToken, providers: Iterable[Provider | dict], now: float | None = None) -> MatchReport:
    now = time.time() if now is None else now
    parsed = [p if isinstance(p, Provider) else parse_providers([p])[0] for p in providers]
    return MatchReport([
        ProviderCheck(index, provider, _selection_problems(decoded, provider),
                      _verification_problems(decoded, provider, now))
        for index, provider in enumerate(parsed)
    ])


# ---------------------------------------------------------------------------
# UserIdentity (PROTOCOL §6.3)

OIDC_CLAIM_FIELDS = {
    "name": "name",
    "given_name": "givenName",
    "family_name": "familyName",
    "nickname": "nickname",
    "preferred_username": "preferredUsername",
    "profile": "profileUrl",
    "picture": "pictureUrl",
    "website": "websiteUrl",
    "email": "email",
    "email_verified": "emailVerified",
    "gender": "gender",
    "birthdate": "birthday",
    "zoneinfo": "timezone",
    "locale": "language",
    "phone_number": "phoneNumber",
    "phone_number_verified": "phoneNumberVerified",
}
# Consumed by Convex's OIDC library as named fields (or dropped): never custom claims.
_OIDC_DROPPED = {
    "sub", "iss", "exp", "jti", "nbf", "fva", "address", "updated_at",
    "aud", "iat", "auth_time", "nonce", "acr", "amr", "azp", "at_hash", "c_hash",
}
_REGISTERED_CLAIMS = {"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}


def _flatten_claims(claims: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in claims.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten_claims(value, name + "."))
        else:
            flat[name] = value
    return flat


def _rfc3339(value: Any) -> str | None:
    number = _number(value)
    if number is None:
        return value if isinstance(value, str) else None
    try:
        return datetime.fromtimestamp(number, tz=timezone.utc).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def user_identity_from_claims(claims: dict, provider_kind: str) -> dict:
    """The UserIdentity object Convex builds from verified claims ("oidc" or "customJwt")."""
    issuer, subject = claims.get("iss"), claims.get("sub")
    identity: dict[str, Any] = {
        "tokenIdentifier": f"{issuer}|{subject}",
        "subject": subject,
        "issuer": issuer,
    }
    if provider_kind == "customJwt":
        private = {key: value for key, value in claims.items() if key not in _REGISTERED_CLAIMS}
        custom = _flatten_claims(private)
        custom.pop("fva", None)
        return _with_custom(identity, custom)
    if provider_kind != "oidc":
        raise ValueError(f"provider_kind must be 'oidc' or 'customJwt', got {provider_kind!r}")
    custom = {}
    for key, value in claims.items():
        if key in OIDC_CLAIM_FIELDS:
            identity[OIDC_CLAIM_FIELDS[key]] = value
        elif key not in _OIDC_DROPPED:
            custom[key] = value
    address = claims.get("address")
    if isinstance(address, dict) and isinstance(address.get("formatted"), str):
        identity["address"] = address["formatted"]
    if "updated_at" in claims and _rfc3339(claims["updated_at"]) is not None:
        identity["updatedAt"] = _rfc3339(claims["updated_at"])
    return _with_custom(identity, custom)


def _with_custom(identity: dict, custom: dict) -> dict:
    """Identity fields first; a custom claim never overrides one of them."""
    return {**identity, **{key: value for key, value in custom.items() if key not in identity}}



# ---------------------------------------------------------------------------
# A deployment's providers


LIST_AUTH_PROVIDERS = "_system/frontend/listAuthProviders"


def _providers_request(deployment_url: str, admin_key: str) -> tuple[str, dict, dict]:
    url = deployment_url.rstrip("/") + "/api/query"
    body = {"path": LIST_AUTH_PROVIDERS, "args": {}, "format": "convex_encoded_json"}
    headers = {"Authorization": f"Convex {admin_key}", "Convex-Client": "convex-console-0.1.0"}
    return url, body, headers


def _providers_from_response(response: httpx.Response) -> list[Provider]:
    from console import values

    if response.status_code not in (200, 560):
        try:
            detail = response.json().get("message", response.text[:200])
        except (ValueError, AttributeError):
            detail = response.text[:200]
        raise ValueError(f"listAuthProviders failed: HTTP {response.status_code}: {detail}")
    payload = response.json()
    if payload.get("status") != "success":
        raise ValueError(f"listAuthProviders failed: {payload.get('errorMessage')}")
    return parse_providers(values.decode(payload.get("value")) or [])


def fetch_auth_providers(deployment_url: str, admin_key: str, *, timeout: float = DEFAULT_TIMEOUT) -> list[Provider]:
    import httpx

    url, body, headers = _providers_request(deployment_url, admin_key)
    with httpx.Client(timeout=timeout) as client:
        return _providers_from_response(client.post(url, json=body, headers=headers))


async def fetch_auth_providers_async(deployment_url: str, admin_key: str, *, timeout: float = DEFAULT_TIMEOUT) -> list[Provider]:
    import httpx

    url, body, headers = _providers_request(deployment_url, admin_key)
    async with httpx.AsyncClient(timeout=timeout) as client:
        return _providers_from_response(await client.post(url, json=body, headers=headers))
