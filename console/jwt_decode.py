"""Decoding a JWT and explaining its claims the way Convex does (PROTOCOL §6): the shared
constants, `Problem`/`TokenError`, `decode_token` and the time claims. Headless, no network."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

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
