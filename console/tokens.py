"""JWT doctor: decode, explain, verify and match tokens the way Convex does (PROTOCOL §6).

Headless (no textual). Network I/O goes through httpx; the verification logic itself is a
generator that yields the URLs it needs, so the sync and async drivers share every rule.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

# The JWT doctor lives in three modules; `console.tokens` keeps re-exporting their public names.
from console.auth_providers import (  # noqa: F401
    LIST_AUTH_PROVIDERS, OIDC_CLAIM_FIELDS, MatchReport, Provider, ProviderCheck, convex_compatibility_hints,
    fetch_auth_providers, fetch_auth_providers_async, match_providers, normalize_issuer, parse_providers,
    user_identity_from_claims,
)
from console.jwks import (  # noqa: F401
    MAX_KEY_FILE_BYTES, FetchFailure, FetchRequest, FetchResponse, KeySource, VerifyResult, _drive_async,
    _drive_sync, _verify_flow, key_source_from_text, verify_token, verify_token_async, verify_with_jwks,
)
from console.jwt_decode import (  # noqa: F401
    CONVEX_LEEWAY_SECONDS, CUSTOM_JWT_ALGORITHMS, DEFAULT_TIMEOUT, ERROR, INFO, JWKS_CONTENT_TYPES,
    MAX_TOKEN_BYTES, OIDC_ALGORITHMS, STATUS_EXPIRED, STATUS_NOT_YET_VALID, STATUS_VALID, WARNING,
    DecodedToken, Problem, TimeClaim, TokenError, decode_token, describe_time_claims, humanize_seconds,
    leeway_note, relative_time, time_problems, token_status,
)

if TYPE_CHECKING:  # imported lazily: jwt + cryptography + httpx cost ~150 ms, masking needs none
    import httpx

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
