"""JWT doctor: decode, explain, verify and match tokens the way Convex does (PROTOCOL §6).

Headless (no textual). Network I/O goes through httpx; the verification logic itself is a
generator that yields the URLs it needs, so the sync and async drivers share every rule.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import urllib.parse
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Generator, Iterable

if TYPE_CHECKING:  # imported lazily: jwt + cryptography + httpx cost ~150 ms, masking needs none
    import httpx

MAX_TOKEN_BYTES = 64 * 1024
CONVEX_LEEWAY_SECONDS = 5
OIDC_ALGORITHMS = ("RS256", "EdDSA")
CUSTOM_JWT_ALGORITHMS = ("RS256", "ES256")
JWKS_CONTENT_TYPES = ("application/json", "application/jwk-set+json")
DEFAULT_TIMEOUT = 5.0

STATUS_VALID = "valid"
STATUS_EXPIRED = "expired"
STATUS_NOT_YET_VALID = "not yet valid"

ERROR, WARNING, INFO = "error", "warning", "info"

_B64URL = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    severity: str = ERROR

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR


class TokenError(ValueError):
    """The text cannot be decoded as a JWT. `code` names the cause."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def problem(self) -> Problem:
        return Problem(self.code, self.message)


# ---------------------------------------------------------------------------
# Masking (used by token history, profiles, lists)


def mask_token(token: str) -> str:
    """First 10 characters, an ellipsis, the last 4; short strings reveal less."""
    token = token or ""
    if len(token) < 24:
        return token[:3] + "…" if token else ""
    return f"{token[:10]}…{token[-4:]}"


def mask_secret(secret: str) -> str:
    """`prod:happy-otter-123|abcd…a1b2` -> `prod:happy-otter-123|••••a1b2`."""
    secret = secret or ""
    prefix, bar, hidden = secret.rpartition("|")
    tail = hidden[-4:] if len(hidden) >= 12 else ""
    return f"{prefix}{bar}••••{tail}"


# ---------------------------------------------------------------------------
# Decoding


@dataclass
class DecodedToken:
    raw: str
    header: dict
    claims: dict
    signature: bytes
    problems: list[Problem] = field(default_factory=list)

    @property
    def alg(self) -> str | None:
        alg = self.header.get("alg")
        return alg if isinstance(alg, str) else None

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None

    @property
    def typ(self) -> str | None:
        typ = self.header.get("typ")
        return typ if isinstance(typ, str) else None

    @property
    def issuer(self) -> str | None:
        iss = self.claims.get("iss")
        return iss if isinstance(iss, str) else None

    @property
    def subject(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) else None

    @property
    def audiences(self) -> list[str]:
        aud = self.claims.get("aud")
        if isinstance(aud, str):
            return [aud]
        if isinstance(aud, list):
            return [item for item in aud if isinstance(item, str)]
        return []


def _strip_bearer(text: str) -> str:
    text = text.strip()
    if text[:7].lower() == "bearer ":
        text = text[7:].strip()
    return text


def _b64url_decode(segment: str, name: str) -> bytes:
    if not _B64URL.match(segment):
        bad = next((char for char in segment if not re.match(r"[A-Za-z0-9_=-]", char)), None)
        if bad is None:
            raise TokenError("not_base64url", f"The {name} has '=' padding in the middle: it is not base64url.")
        hint = " (standard base64 '+'/'/'; JWTs use base64url '-'/'_')" if bad in "+/" else ""
        raise TokenError(
            "not_base64url",
            f"The {name} contains {bad!r}, which is not a base64url character{hint}.",
        )
    body = segment.rstrip("=")
    if len(body) % 4 == 1:
        raise TokenError(
            "truncated",
            f"The {name} has an impossible base64url length ({len(body)} characters): "
            "the token looks truncated or has characters missing.",
        )
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as error:
        raise TokenError("not_base64url", f"The {name} is not valid base64url: {error}") from None


def _json_segment(segment: str, name: str) -> dict:
    raw = _b64url_decode(segment, name)
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise TokenError("not_json", f"The {name} is not UTF-8 text, so it is not JSON.") from None
    except json.JSONDecodeError as error:
        if error.pos >= len(error.doc.rstrip()) and error.doc.lstrip().startswith("{"):
            raise TokenError(
                "truncated", f"The {name} JSON stops early ({error.msg}): the token looks truncated or cut."
            ) from None
        preview = raw[:40].decode("utf-8", "replace")
        raise TokenError(
            "not_json", f"The {name} is not JSON ({error.msg} at position {error.pos}): {preview!r}"
        ) from None
    if not isinstance(value, dict):
        raise TokenError("not_json_object", f"The {name} is JSON but not an object: {type(value).__name__}.")
    return value


def _split_parts(text: str) -> list[str]:
    parts = text.split(".")
    if len(parts) == 3:
        return parts
    if len(parts) == 1 and text.startswith("eyJ"):
        raise TokenError(
            "truncated",
            "The text starts like a JWT header ('eyJ…') but has no '.': the token is truncated "
            "(only part of the header was copied).",
        )
    if len(parts) == 1:
        raise TokenError(
            "not_a_jwt",
            "This is not a JWT: a JWT is three base64url parts separated by '.' "
            f"(header.payload.signature), and this text has no '.' ({len(text)} characters).",
        )
    if len(parts) == 2:
        raise TokenError(
            "two_parts",
            "The token has only two parts (header.payload): the signature part is missing. "
            "It was probably cut off when copying, or it is an unsigned token.",
        )
    if len(parts) == 5:
        raise TokenError(
            "encrypted",
            "The token has five parts: it is an encrypted JWE, not a signed JWT. "
            "Convex needs a signed ID token (JWS).",
        )
    raise TokenError(
        "wrong_part_count", f"A JWT has 3 parts separated by '.', this text has {len(parts)}."
    )


def decode_token(text: str) -> DecodedToken:
    """Decode without verifying. Raises TokenError with a precise cause."""
    if not isinstance(text, str):
        raise TokenError("not_a_jwt", f"Expected the token as text, got {type(text).__name__}.")
    size = len(text.encode("utf-8", "replace"))
    if size > MAX_TOKEN_BYTES:
        raise TokenError(
            "too_large",
            f"The token is {size} bytes, more than the {MAX_TOKEN_BYTES // 1024} KiB limit: "
            "it is not a JWT, or it carries far too many claims.",
        )
    token = _strip_bearer(text)
    if not token:
        raise TokenError("empty", "No token: the text is empty.")
    if any(char.isspace() for char in token):
        raise TokenError("whitespace", "The token contains whitespace or a line break inside it.")
    header_part, payload_part, signature_part = _split_parts(token)
    start = header_part.find("eyJ")
    if start > 0:
        raise TokenError(
            "extra_prefix",
            f"{start} extra character(s) {header_part[:min(start, 12)]!r} come before the header "
            "(a JWT header starts with 'eyJ'): remove them.",
        )
    if not header_part:
        raise TokenError("empty_header", "The header part (before the first '.') is empty.")
    header = _json_segment(header_part, "header")
    if not payload_part:
        raise TokenError("empty_payload", "The payload part (between the dots) is empty.")
    claims = _json_segment(payload_part, "payload")
    signature = _b64url_decode(signature_part, "signature")
    decoded = DecodedToken(token, header, claims, signature)
    decoded.problems = _header_problems(decoded) + _claim_type_problems(claims)
    return decoded


def _header_problems(decoded: DecodedToken) -> list[Problem]:
    problems = []
    alg = decoded.header.get("alg")
    if alg is None:
        problems.append(Problem("alg_missing", "The header has no 'alg': nothing says how it is signed."))
    elif isinstance(alg, str) and alg.lower() == "none":
        problems.append(Problem(
            "alg_none",
            "The header says alg 'none': the token is unsigned. Convex (and every sane verifier) "
            "rejects it; anyone could have written these claims.",
        ))
    if not decoded.signature and not (isinstance(alg, str) and alg.lower() == "none"):
        problems.append(Problem("empty_signature", "The signature part is empty."))
    return problems


def _claim_type_problems(claims: dict) -> list[Problem]:
    problems = []
    for name in ("exp", "nbf", "iat"):
        value = claims.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            problems.append(Problem(
                "bad_time_claim", f"'{name}' must be a number of seconds since 1970, got {value!r}."
            ))
    for name in ("iss", "sub"):
        value = claims.get(name)
        if value is not None and not isinstance(value, str):
            problems.append(Problem("bad_claim_type", f"'{name}' must be a string, got {value!r}."))
    aud = claims.get("aud")
    if aud is not None and not isinstance(aud, str) and not (
        isinstance(aud, list) and all(isinstance(item, str) for item in aud)
    ):
        problems.append(Problem("bad_claim_type", f"'aud' must be a string or a list of strings, got {aud!r}."))
    return problems


# ---------------------------------------------------------------------------
# Time claims


@dataclass(frozen=True)
class TimeClaim:
    name: str
    timestamp: float
    utc: datetime
    local: datetime
    relative: str


def humanize_seconds(seconds: float) -> str:
    seconds = abs(int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def relative_time(name: str, timestamp: float, now: float) -> str:
    delta = timestamp - now
    span = humanize_seconds(delta)
    future = delta > 0
    if name == "exp":
        return f"expires in {span}" if future else f"expired {span} ago"
    if name == "nbf":
        return f"becomes valid in {span}" if future else f"valid since {span} ago"
    if name == "iat":
        return f"issued {span} in the future (clock skew?)" if future else f"issued {span} ago"
    return f"in {span}" if future else f"{span} ago"


def _number(value: Any) -> float | None:
    """A usable time value: finite and within datetime's range, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if abs(number) < 1e11 else None


def describe_time_claims(claims: dict, now: float | None = None) -> list[TimeClaim]:
    now = time.time() if now is None else now
    result = []
    for name in ("iat", "nbf", "exp"):
        timestamp = _number(claims.get(name))
        if timestamp is None:
            continue
        try:
            utc = datetime.fromtimestamp(timestamp, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            continue
        result.append(TimeClaim(name, timestamp, utc, utc.astimezone(), relative_time(name, timestamp, now)))
    return result


def token_status(claims: dict, now: float | None = None, leeway: float = 0) -> str:
    """The badge: valid / expired / not yet valid (a token without exp counts as valid)."""
    now = time.time() if now is None else now
    exp, nbf = _number(claims.get("exp")), _number(claims.get("nbf"))
    if exp is not None and now > exp + leeway:
        return STATUS_EXPIRED
    if nbf is not None and now < nbf - leeway:
        return STATUS_NOT_YET_VALID
    return STATUS_VALID


def time_problems(claims: dict, now: float, leeway: float = CONVEX_LEEWAY_SECONDS,
                  kind: str | None = None) -> list[Problem]:
    """exp/nbf/iat as Convex checks them for a provider `kind` ("oidc", "customJwt", None: unknown).

    customJwt providers allow `leeway` seconds on exp/nbf/iat; Convex's OIDC verifier allows none
    on exp and does not check nbf or iat. The badge (token_status) stays honest either way.
    """
    if kind == "oidc":
        return _oidc_time_problems(claims, now, leeway)
    problems = []
    exp, nbf, iat = (_number(claims.get(name)) for name in ("exp", "nbf", "iat"))
    oidc_note = "" if kind == "customJwt" else "; an OIDC provider already rejects it (no leeway)"
    if exp is not None:
        if now > exp + leeway:
            problems.append(Problem("expired", f"The token {relative_time('exp', exp, now)} ({_iso(exp)})."))
        elif now > exp:
            problems.append(Problem(
                "clock_skew",
                f"expired {humanize_seconds(now - exp)} ago — still accepted by Convex's {leeway:g} s leeway "
                f"(customJwt){oidc_note}.", WARNING,
            ))
    if nbf is not None:
        if now < nbf - leeway:
            problems.append(Problem(
                "not_yet_valid",
                f"The token {relative_time('nbf', nbf, now)} ({_iso(nbf)}): nbf is in the future. "
                "Check the clock of the machine that minted it.",
            ))
        elif now < nbf:
            problems.append(Problem(
                "clock_skew",
                f"nbf is {humanize_seconds(nbf - now)} in the future — still accepted by Convex's {leeway:g} s "
                "leeway (customJwt): clock skew between the issuer and this machine.", WARNING,
            ))
    if iat is not None and iat > now + leeway:
        problems.append(Problem(
            "iat_in_future",
            f"iat is {humanize_seconds(iat - now)} in the future ({_iso(iat)}), beyond the {leeway:g} s "
            "leeway: the issuer's clock (or this machine's) is wrong.",
        ))
    return problems


def _oidc_time_problems(claims: dict, now: float, leeway: float) -> list[Problem]:
    problems = []
    exp, nbf, iat = (_number(claims.get(name)) for name in ("exp", "nbf", "iat"))
    if exp is not None and now >= exp:
        note = (f" Convex's OIDC verifier allows no leeway (the {leeway:g} s leeway is for customJwt providers)."
                if now - exp <= leeway else "")
        problems.append(Problem("expired", f"The token {relative_time('exp', exp, now)} ({_iso(exp)}).{note}"))
    if nbf is not None and now < nbf:
        problems.append(Problem(
            "clock_skew",
            f"nbf is {humanize_seconds(nbf - now)} in the future ({_iso(nbf)}); Convex's OIDC verifier does not "
            "check nbf, but other verifiers will reject the token: check the issuer's clock.", WARNING,
        ))
    if iat is not None and iat > now + leeway:
        problems.append(Problem(
            "clock_skew",
            f"iat is {humanize_seconds(iat - now)} in the future ({_iso(iat)}): the issuer's clock (or this "
            "machine's) is wrong. Convex's OIDC verifier does not check iat.", WARNING,
        ))
    return problems


def leeway_note(problems: Iterable[Problem]) -> str | None:
    """The 'still accepted by the leeway' message, to show next to an honest EXPIRED badge."""
    return next((p.message for p in problems if p.code == "clock_skew" and "leeway" in p.message), None)


def _iso(timestamp: float) -> str:
    try:
        return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return str(timestamp)


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
# Verification: keys from OIDC discovery, a JWKS URL, a data: URL, a PEM key or a secret


@dataclass(frozen=True)
class KeySource:
    """Where the verification key comes from; all None means OIDC discovery from `iss`."""

    jwks_url: str | None = None
    pem: str | None = None
    secret: str | None = None


@dataclass
class VerifyResult:
    ok: bool
    problems: list[Problem]
    source: str
    jwks_url: str | None = None
    kid: str | None = None
    algorithm: str | None = None

    @property
    def error(self) -> Problem | None:
        return next((problem for problem in self.problems if problem.is_error), None)


@dataclass(frozen=True)
class FetchRequest:
    url: str
    what: str  # "OIDC discovery document" | "JWKS"


@dataclass(frozen=True)
class FetchResponse:
    url: str
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class FetchFailure:
    url: str
    reason: str


class _Failed(Exception):
    def __init__(self, problem: Problem):
        self.problem = problem


_KTY_FOR_ALG = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


def _kty_for(alg: str) -> str | None:
    return _KTY_FOR_ALG.get(alg[:2])


def _check_signature(decoded: DecodedToken, key: Any, alg: str) -> None:
    import jwt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            jwt.PyJWS().decode(decoded.raw, key=key, algorithms=[alg])
        except jwt.InvalidSignatureError:
            raise _Failed(Problem(
                "signature_mismatch",
                "Signature mismatch: the token was not signed by this key (or it was altered after signing).",
            )) from None
        except (jwt.InvalidKeyError, jwt.InvalidAlgorithmError, TypeError, ValueError) as error:
            raise _Failed(Problem("wrong_algorithm", f"The key cannot verify a {alg} signature: {error}")) from None
        except jwt.PyJWTError as error:
            raise _Failed(Problem("signature_mismatch", f"Signature check failed: {error}")) from None


def _load_pem(pem: str) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

    data = pem.strip().encode()
    try:
        if b"CERTIFICATE" in data:
            return x509.load_pem_x509_certificate(data).public_key()
        if b"PRIVATE KEY" in data:
            return load_pem_private_key(data, password=None).public_key()
        return load_pem_public_key(data)
    except (ValueError, TypeError) as error:
        raise _Failed(Problem("key_invalid", f"The key is not a PEM public key, certificate or private key: {error}")) from None


def _pem_matches(alg: str, key: Any) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    kind = _kty_for(alg)
    return (
        (kind == "RSA" and isinstance(key, rsa.RSAPublicKey))
        or (kind == "EC" and isinstance(key, ec.EllipticCurvePublicKey))
        or (kind == "OKP" and isinstance(key, ed25519.Ed25519PublicKey))
    )


def _parse_data_url(url: str) -> FetchResponse:
    header, comma, data = url[5:].partition(",")
    if not comma:
        raise _Failed(Problem("jwks_invalid", "The data: URL has no ',' separating its media type and data."))
    media_type = header.split(";")[0] or "text/plain"
    try:
        body = base64.b64decode(data) if header.endswith(";base64") else urllib.parse.unquote_to_bytes(data)
    except (binascii.Error, ValueError):
        raise _Failed(Problem("jwks_invalid", "The data: URL's base64 content is not valid base64.")) from None
    return FetchResponse(url, 200, media_type, body)


def _fetch(request: FetchRequest) -> Generator[FetchRequest, Any, FetchResponse]:
    """Yields the request, receives FetchResponse | FetchFailure; data: URLs need no network."""
    if request.url.startswith("data:"):
        return _parse_data_url(request.url)
    response = yield request
    if isinstance(response, FetchFailure):
        code = "jwks_unreachable" if request.what == "JWKS" else "discovery_unreachable"
        raise _Failed(Problem(code, f"The {request.what} at {request.url} is unreachable: {response.reason}"))
    if response.status != 200:
        code = "jwks_http_status" if request.what == "JWKS" else "discovery_http_status"
        raise _Failed(Problem(code, f"The {request.what} at {request.url} answered HTTP {response.status}."))
    return response


def _json_body(response: FetchResponse, what: str, code: str) -> Any:
    try:
        return json.loads(response.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        preview = response.body[:60].decode("utf-8", "replace")
        raise _Failed(Problem(
            code, f"The {what} at {response.url} is not JSON (Content-Type {response.content_type or 'none'}): {preview!r}"
        )) from None


def _discover_jwks_url(decoded: DecodedToken, problems: list[Problem]) -> Generator[FetchRequest, Any, str]:
    issuer = decoded.issuer
    if not issuer:
        raise _Failed(Problem(
            "no_key_source", "The token has no 'iss', so its keys cannot be discovered; give a JWKS URL or a key."
        ))
    url = normalize_issuer(issuer) + "/.well-known/openid-configuration"
    response = yield from _fetch(FetchRequest(url, "OIDC discovery document"))
    document = _json_body(response, "OIDC discovery document", "discovery_not_json")
    jwks_uri = document.get("jwks_uri") if isinstance(document, dict) else None
    if not isinstance(jwks_uri, str):
        raise _Failed(Problem("discovery_no_jwks_uri", f"The discovery document at {url} has no 'jwks_uri'."))
    discovered_issuer = document.get("issuer")
    if isinstance(discovered_issuer, str) and discovered_issuer != issuer:
        problems.append(Problem(
            "discovery_issuer_mismatch",
            f"The discovery document says issuer '{discovered_issuer}' but the token's iss is '{issuer}'; "
            "Convex's OIDC verifier requires them to be identical (watch trailing slashes).",
        ))
    return jwks_uri


def _load_jwks(url: str, strict_content_type: bool, problems: list[Problem]) -> Generator[FetchRequest, Any, list]:
    response = yield from _fetch(FetchRequest(url, "JWKS"))
    content_type = response.content_type.split(";")[0].strip().lower()
    if not url.startswith("data:") and content_type not in JWKS_CONTENT_TYPES:
        problems.append(Problem(
            "jwks_content_type",
            f"The JWKS at {url} is served as '{response.content_type or 'no Content-Type'}'; Convex requires "
            "application/json or application/jwk-set+json for customJwt providers.",
            ERROR if strict_content_type else WARNING,
        ))
    document = _json_body(response, "JWKS", "jwks_not_json")
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise _Failed(Problem("jwks_invalid", f"The JWKS at {url} is JSON but has no 'keys' list."))
    return [key for key in keys if isinstance(key, dict)]


def _verify_with_jwks(decoded: DecodedToken, alg: str, keys: list, url: str, problems: list[Problem]) -> str | None:
    kid = decoded.kid
    if kid is not None:
        candidates = [key for key in keys if key.get("kid") == kid]
        if not candidates:
            known = ", ".join(repr(key.get("kid")) for key in keys) or "no keys at all"
            raise _Failed(Problem(
                "unknown_kid",
                f"No key with kid '{kid}' in the JWKS at {url} (it has {known}). The signing key was "
                "probably rotated, or the token comes from another issuer or environment.",
            ))
    else:
        problems.append(Problem(
            "kid_missing", "The header has no 'kid': trying every key of a matching type.", WARNING
        ))
        candidates = keys
    usable = [key for key in candidates if key.get("kty") == _kty_for(alg) and key.get("alg", alg) == alg]
    if not usable:
        described = ", ".join(f"{key.get('kty')}/{key.get('alg', 'no alg')}" for key in candidates) or "none"
        raise _Failed(Problem(
            "wrong_algorithm",
            f"The token is signed with {alg}, but the matching key(s) are of another type/algorithm ({described}).",
        ))
    import jwt

    last_failure = None
    for jwk_dict in usable:
        try:
            key = jwt.PyJWK(jwk_dict, algorithm=alg).key
        except jwt.PyJWTError as error:
            last_failure = _Failed(Problem("jwk_invalid", f"JWKS key {jwk_dict.get('kid')!r} is not usable: {error}"))
            continue
        try:
            _check_signature(decoded, key, alg)
            return jwk_dict.get("kid")
        except _Failed as failure:
            last_failure = failure
    raise last_failure  # type: ignore[misc]


def _verify_flow(decoded: DecodedToken, keys: KeySource, strict_content_type: bool) -> Generator[FetchRequest, Any, VerifyResult]:
    problems: list[Problem] = []
    alg = decoded.alg
    source = "?"
    jwks_url = None
    try:
        if alg is None:
            raise _Failed(Problem("alg_missing", "The header has no 'alg', so the signature cannot be checked."))
        if alg.lower() == "none":
            raise _Failed(Problem("alg_none", "alg is 'none': the token is unsigned and can never be verified."))
        if alg.startswith("HS"):
            source = "shared secret"
            if not keys.secret:
                raise _Failed(Problem(
                    "hs_no_secret",
                    f"{alg} is a shared-secret (HMAC) algorithm: give the secret (--secret-env VAR) to check it. "
                    "Note that Convex never accepts HMAC tokens (OIDC: RS256/EdDSA; customJwt: RS256/ES256).",
                ))
            if len(keys.secret.encode()) < 32:
                problems.append(Problem("short_secret", "The secret is shorter than 32 bytes.", WARNING))
            _check_signature(decoded, keys.secret.encode(), alg)
            return VerifyResult(True, problems, source, None, decoded.kid, alg)
        if keys.secret:
            raise _Failed(Problem(
                "wrong_algorithm", f"A shared secret was given, but the token is signed with {alg} (a public-key algorithm)."
            ))
        if keys.pem:
            source = "PEM key"
            key = _load_pem(keys.pem)
            if not _pem_matches(alg, key):
                raise _Failed(Problem(
                    "wrong_algorithm", f"The token is signed with {alg}, but the given key is a {type(key).__name__}."
                ))
            _check_signature(decoded, key, alg)
            return VerifyResult(True, problems, source, None, decoded.kid, alg)
        if keys.jwks_url:
            jwks_url = keys.jwks_url
            source = "data: URL JWKS" if jwks_url.startswith("data:") else f"JWKS {jwks_url}"
        else:
            jwks_url = yield from _discover_jwks_url(decoded, problems)
            source = f"OIDC discovery from iss -> {jwks_url}"
        jwk_list = yield from _load_jwks(jwks_url, strict_content_type, problems)
        kid = _verify_with_jwks(decoded, alg, jwk_list, _short_url(jwks_url), problems)
        ok = not any(problem.is_error for problem in problems)
        return VerifyResult(ok, problems, source, jwks_url, kid, alg)
    except _Failed as failure:
        return VerifyResult(False, problems + [failure.problem], source, jwks_url, decoded.kid, alg)


def _short_url(url: str) -> str:
    return url if len(url) <= 80 else url[:60] + "…"


def _response_from_httpx(response: httpx.Response) -> FetchResponse:
    return FetchResponse(str(response.url), response.status_code, response.headers.get("content-type", ""), response.content)


def _failure_reason(error: Exception) -> str:
    import httpx

    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    if isinstance(error, httpx.ConnectError):
        return f"connection failed ({error})"
    return f"{type(error).__name__}: {error}"


def _drive_sync(flow: Generator, client: httpx.Client | None, timeout: float) -> Any:
    import httpx

    own = client is None
    client = client or httpx.Client(timeout=timeout, follow_redirects=True)
    try:
        request = next(flow)
        while True:
            try:
                reply: Any = _response_from_httpx(client.get(request.url, timeout=timeout))
            except (httpx.HTTPError, ValueError) as error:
                reply = FetchFailure(request.url, _failure_reason(error))
            request = flow.send(reply)
    except StopIteration as stop:
        return stop.value
    finally:
        if own:
            client.close()


async def _drive_async(flow: Generator, client: httpx.AsyncClient | None, timeout: float) -> Any:
    import httpx

    own = client is None
    client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=True)
    try:
        request = next(flow)
        while True:
            try:
                reply: Any = _response_from_httpx(await client.get(request.url, timeout=timeout))
            except (httpx.HTTPError, ValueError) as error:
                reply = FetchFailure(request.url, _failure_reason(error))
            request = flow.send(reply)
    except StopIteration as stop:
        return stop.value
    finally:
        if own:
            await client.aclose()


def verify_with_jwks(decoded: DecodedToken, jwks_keys: list[dict], label: str = "JWKS") -> VerifyResult:
    """Check the signature against an already fetched (e.g. cached) JWKS `keys` list; no network."""
    problems: list[Problem] = []
    alg = decoded.alg
    try:
        if alg is None or alg.lower() == "none" or alg.startswith("HS"):
            code = "alg_missing" if alg is None else ("alg_none" if alg.lower() == "none" else "wrong_algorithm")
            raise _Failed(Problem(code, f"A token with alg {alg!r} cannot be verified with a JWKS."))
        kid = _verify_with_jwks(decoded, alg, [k for k in jwks_keys if isinstance(k, dict)], label, problems)
        return VerifyResult(True, problems, label, None, kid, alg)
    except _Failed as failure:
        return VerifyResult(False, problems + [failure.problem], label, None, decoded.kid, alg)


def verify_token(decoded: DecodedToken, keys: KeySource = KeySource(), *, strict_content_type: bool = False,
                 client: httpx.Client | None = None, timeout: float = DEFAULT_TIMEOUT) -> VerifyResult:
    return _drive_sync(_verify_flow(decoded, keys, strict_content_type), client, timeout)


async def verify_token_async(decoded: DecodedToken, keys: KeySource = KeySource(), *, strict_content_type: bool = False,
                             client: httpx.AsyncClient | None = None, timeout: float = DEFAULT_TIMEOUT) -> VerifyResult:
    return await _drive_async(_verify_flow(decoded, keys, strict_content_type), client, timeout)


# ---------------------------------------------------------------------------
# The whole report: decode, times, provider match, verification, identity


@dataclass
class TokenReport:
    raw: str
    decoded: DecodedToken | None = None
    decode_error: TokenError | None = None
    times: list[TimeClaim] = field(default_factory=list)
    status: str | None = None
    problems: list[Problem] = field(default_factory=list)
    verification: VerifyResult | None = None
    match: MatchReport | None = None
    identity: dict | None = None
    identity_kind: str = "oidc"

    @property
    def valid(self) -> bool:
        """Would Convex accept it? With providers, their rules decide (a token 3 s past exp is
        still accepted by a customJwt provider's leeway); without, the honest badge does."""
        if self.decoded is None:
            return False
        if any(problem.is_error for problem in self.problems):
            return False
        if self.verification is not None and not self.verification.ok:
            return False
        if self.match is not None:
            return self.match.accepted
        return self.status == STATUS_VALID

    @property
    def errors(self) -> list[Problem]:
        found = [self.decode_error.problem] if self.decode_error else []
        found += [p for p in self.problems if p.is_error]
        if self.verification:
            found += [p for p in self.verification.problems if p.is_error]
        if self.match and self.match.chosen:
            found += [p for p in self.match.chosen.problems if p.is_error]
        elif self.match:
            found.append(Problem("no_auth_provider", self.match.summary))
        return found


def _keys_for_provider(decoded: DecodedToken, provider: Provider) -> tuple[KeySource, bool]:
    if provider.kind == "customJwt":
        return KeySource(jwks_url=provider.jwks), True
    return KeySource(), False


def _plan(token: str, providers: Iterable[Any] | None, keys: KeySource | None, now: float | None, verify: bool):
    """Builds the report up to verification; returns (report, flow or None)."""
    now = time.time() if now is None else now
    report = TokenReport(raw=token)
    try:
        decoded = decode_token(token)
    except TokenError as error:
        report.decode_error = error
        return report, None
    report.decoded = decoded
    report.times = describe_time_claims(decoded.claims, now)
    report.status = token_status(decoded.claims, now)
    report.problems = list(decoded.problems)
    strict = False
    if providers is not None:
        report.match = match_providers(decoded, providers, now)
        chosen = report.match.chosen
        if chosen is not None:
            report.identity_kind = chosen.provider.kind
            if keys is None:
                keys, strict = _keys_for_provider(decoded, chosen.provider)
    else:
        report.problems += time_problems(decoded.claims, now) + convex_compatibility_hints(decoded)
    report.identity = user_identity_from_claims(decoded.claims, report.identity_kind)
    if not verify:
        return report, None
    return report, _verify_flow(decoded, keys or KeySource(), strict)


def diagnose(token: str, *, providers: Iterable[Any] | None = None, keys: KeySource | None = None,
             verify: bool = True, now: float | None = None, client: httpx.Client | None = None,
             timeout: float = DEFAULT_TIMEOUT) -> TokenReport:
    report, flow = _plan(token, providers, keys, now, verify)
    if flow is not None:
        report.verification = _drive_sync(flow, client, timeout)
    return report


async def diagnose_async(token: str, *, providers: Iterable[Any] | None = None, keys: KeySource | None = None,
                         verify: bool = True, now: float | None = None, client: httpx.AsyncClient | None = None,
                         timeout: float = DEFAULT_TIMEOUT) -> TokenReport:
    report, flow = _plan(token, providers, keys, now, verify)
    if flow is not None:
        report.verification = await _drive_async(flow, client, timeout)
    return report


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


# ---------------------------------------------------------------------------
# A key typed or pasted by a person (the Auth screen's key box)

MAX_KEY_FILE_BYTES = 1 << 20


def key_source_from_text(text: str, *, environ: dict | None = None) -> tuple[KeySource | None, str]:
    """Understand a pasted key: blank (automatic), a JWKS URL, a data: URL, a PEM key or
    certificate, JWKS or JWK JSON, a file holding one of those, `env:VAR` or `secret:...` (HMAC).
    Returns (KeySource or None for automatic, a description without the secret); raises ValueError."""
    import os

    text = (text or "").strip()
    if not text:
        return None, "auto (provider's JWKS or OIDC discovery)"
    if text.startswith(("http://", "https://")):
        return KeySource(jwks_url=text), f"JWKS {_short_url(text)}"
    if text.startswith("data:"):
        return KeySource(jwks_url=text), "JWKS from a data: URL"
    if text.startswith("-----BEGIN"):
        return KeySource(pem=text), "the pasted PEM key"
    if text.startswith("{"):
        return KeySource(jwks_url=_jwks_data_url(text)), "the pasted JWKS/JWK JSON"
    if text.startswith("env:"):
        name = text[4:].strip()
        value = (os.environ if environ is None else environ).get(name)
        if not value:
            raise ValueError(f"The environment variable {name or '(empty name)'} is not set.")
        return KeySource(secret=value), f"the HMAC secret in ${name}"
    if text.startswith("secret:"):
        if not text[7:]:
            raise ValueError("secret: is empty.")
        return KeySource(secret=text[7:]), "the pasted HMAC secret (••••)"
    path = os.path.expanduser(text)
    if os.path.isfile(path):
        return _key_from_file(path, environ)
    if text.startswith(("/", "~", "./")) or text.endswith((".pem", ".json", ".crt", ".key")):
        raise ValueError(f"No such file: {text}")
    return KeySource(secret=text), "the pasted HMAC secret (••••; prefix secret: to be explicit)"


def _jwks_data_url(text: str) -> str:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ValueError(f"The key looks like JSON but is not: {error}") from None
    if isinstance(value, dict) and "kty" in value:
        value = {"keys": [value]}
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
        raise ValueError("JSON key: expected a JWKS ({\"keys\": [...]}) or one JWK ({\"kty\": ...}).")
    encoded = base64.b64encode(json.dumps(value).encode()).decode()
    return f"data:application/json;base64,{encoded}"


def _key_from_file(path: str, environ: dict | None) -> tuple[KeySource | None, str]:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as error:
        raise ValueError(f"Cannot read {path}: {error.strerror}") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise ValueError(f"{path} is larger than 1 MiB: not a key.")
    content = data.decode("utf-8", "replace").strip()
    if not content.startswith(("-----BEGIN", "{")):
        raise ValueError(f"{path} holds neither a PEM key nor JWKS JSON.")
    source, _ = key_source_from_text(content, environ=environ)
    return source, f"the key in {path}"


def token_from_file_text(content: str) -> str:
    """A file's token: the text itself, or the token/id_token/access_token field of a JSON object
    (`convex-console token mint --json`, OAuth responses)."""
    content = content.strip()
    if content.startswith("{"):
        try:
            value = json.loads(content)
        except ValueError:
            return content
        if isinstance(value, dict):
            for name in ("token", "id_token", "idToken", "access_token", "jwt"):
                if isinstance(value.get(name), str):
                    return value[name].strip()
    return content
