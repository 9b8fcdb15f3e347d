"""Token verification as a Convex deployment does it (PROTOCOL §6).

`TokenVerifier.verify(jwt) -> Identity`: the steps and 401 messages of Convex's `validate_id_token`
(authentication crate), with OIDC discovery / JWKS fetching and caching (`JwksCache`) and a cache
of verified tokens (by token string, until they expire).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import http
import json
import re
import threading
import time
import urllib.parse
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import httpx
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from console.emulator.auth_providers import _SCHEME, AuthProvider, _with_protocol
from console.emulator.errors import ApiError
from console.emulator.identity import Identity
LEEWAY_S = 5  # customJwt exp/nbf/iat leeway (biscuit `epsilon`)
OIDC_ALGORITHMS = ("RS256", "EdDSA")
JWKS_MEDIA_TYPES = ("application/json", "application/jwk-set+json")
MAX_RESPONSE_BYTES = 1 << 20

# --- Convex's messages (crates/authentication/src/lib.rs, crates/common/src/auth.rs) -------

MSG_PARSE_PAYLOAD = (
    "Could not parse JWT payload. Check that the token is a valid JWT format with three "
    "base64-encoded parts separated by dots."
)
MSG_MISSING_ISS = (
    "Missing issuer claim ('iss') in JWT payload. The JWT must include an 'iss' claim that "
    "matches one of your configured auth providers."
)
MSG_MISSING_AUD = (
    "Missing audience claim ('aud') in JWT payload. The JWT must include an 'aud' claim that "
    "matches your configured application ID."
)
MSG_OIDC_PARSE = "Could not parse as OIDC ID token. Token might not be an OIDC-compliant JWT."
MSG_OIDC_VERIFY = (
    "Could not verify OIDC token claim. Check that the token signature is valid and the token "
    "hasn't expired."
)
MSG_CUSTOM_CLAIMS = (
    "Could not verify token claim. Check that the JWT contains valid claims and matches your "
    "auth provider configuration."
)
MSG_MISSING_KID = "Could not decode token. JWT may be missing a 'kid' (key ID) header."
MSG_BAD_DATA_URL = (
    "Invalid JWKS data URL. Check that the data URL is properly formatted and contains valid "
    "base64-encoded JSON."
)


def _unauthenticated(code: str, message: str, detail: str | None = None) -> ApiError:
    error = ApiError(401, code, message)
    error.detail = detail  # the precise cause, for the console's token doctor; not on the wire
    return error


def no_provider_message(providers: list["AuthProvider"]) -> str:
    """`enhance_no_provider_error` (unredacted, as on a local backend)."""
    if not providers:
        return (
            "No auth provider found matching the given token (no providers configured). "
            "Check convex/auth.config.ts."
        )
    listed = ", ".join(provider.describe() for provider in providers)
    return (
        "No auth provider found matching the given token. Check that your JWT's issuer and "
        f"audience match one of your configured providers: [{listed}]"
    )


def kid_message(kid: str) -> str:
    return (
        f"Could not decode token. The JWT's 'kid' (key ID) header is '{kid}', does this key "
        "match any key in the provider's JWKS?"
    )


# --- JWKS ----------------------------------------------------------------------------------


def _b64url_decode(text: str) -> bytes:
    if not isinstance(text, str) or "=" in text or not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class JsonWebKey:
    kid: str | None
    kty: str
    alg: str | None
    use: str | None
    crv: str | None
    public_key: Any = None  # a cryptography public key, or None if unusable

    def verifies(self, alg: str, signing_input: bytes, signature: bytes) -> bool:
        verifier = _ALGORITHM_VERIFIERS.get(alg)
        if verifier is None or self.public_key is None:
            return False
        try:
            return bool(verifier.verify(signing_input, self.public_key, signature))
        except Exception:  # noqa: BLE001 (wrong key type for the algorithm, bad encoding)
            return False

    def compatible_with(self, alg: str) -> bool:
        """openidconnect's key filter: type fits the algorithm, `use` and `alg` allow it."""
        if self.use not in (None, "sig") or self.alg not in (None, alg):
            return False
        if alg == "RS256":
            return self.kty == "RSA"
        if alg == "EdDSA":
            return self.kty == "OKP" and self.crv == "Ed25519"
        if alg == "ES256":
            return self.kty == "EC" and self.crv == "P-256"
        return False


_ALGORITHM_VERIFIERS = {
    "RS256": RSAAlgorithm(RSAAlgorithm.SHA256),
    "ES256": ECAlgorithm(ECAlgorithm.SHA256),
    "EdDSA": OKPAlgorithm(),
}
_KEY_LOADERS = {"RSA": RSAAlgorithm.from_jwk, "EC": ECAlgorithm.from_jwk, "OKP": OKPAlgorithm.from_jwk}


def _parse_jwk(raw: dict) -> JsonWebKey:
    kty = raw.get("kty")
    if not isinstance(kty, str):
        raise ValueError("JWK without kty")
    key = JsonWebKey(raw.get("kid"), kty, raw.get("alg"), raw.get("use"), raw.get("crv"))
    loader = _KEY_LOADERS.get(kty)
    if loader is not None:
        try:
            key.public_key = loader(raw)
            if hasattr(key.public_key, "public_key") and not hasattr(key.public_key, "verify"):
                key.public_key = key.public_key.public_key()
        except Exception:  # noqa: BLE001 (malformed key material: the key can verify nothing)
            key.public_key = None
    return key


@dataclass
class KeySet:
    keys: list[JsonWebKey]

    def find(self, kid: str) -> JsonWebKey | None:
        return next((key for key in self.keys if key.kid == kid), None)


def parse_jwks(body: bytes | str | dict, *, lenient: bool = False) -> KeySet:
    """A JWK Set document -> KeySet; ValueError if it is not one. `lenient` skips bad keys."""
    document = json.loads(body) if isinstance(body, (bytes, str)) else body
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK set")
    keys = []
    for raw in document["keys"]:
        try:
            if not isinstance(raw, dict):
                raise ValueError("JWK is not an object")
            keys.append(_parse_jwk(raw))
        except ValueError:
            if not lenient:
                raise
    return KeySet(keys)


def _decode_data_url(url: str) -> bytes:
    header, comma, data = url[5:].partition(",")
    if not comma:
        raise ValueError("no comma")
    raw = urllib.parse.unquote_to_bytes(data)
    if header.lower().endswith(";base64"):
        compact = re.sub(rb"[\s]", b"", raw)
        return base64.b64decode(compact + b"=" * (-len(compact) % 4), validate=True)
    return raw


class _FetchFailed(Exception):
    def __init__(self, message: str, status: int | None = None, body: bytes = b""):
        super().__init__(message)
        self.status = status
        self.body = body


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _content_type_ok(value: str | None) -> bool:
    if not value:
        return False
    essence, *params = [part.strip() for part in value.split(";")]
    if essence.lower() not in JWKS_MEDIA_TYPES:
        return False
    for param in params:
        name, _, val = param.partition("=")
        if name.strip().lower() == "charset" and val.strip().strip('"').lower() != "utf-8":
            return False
    return True


@dataclass
class _CacheEntry:
    value: Any
    fetched_at: float
    error: ApiError | None = None


class JwksCache:
    """Fetches and caches JWK sets and OIDC discovery documents (thread-safe).

    Entries live `ttl_s`; a token whose `kid` is unknown forces one refetch, at most once per
    `min_refresh_s` per URL, so forged kids cannot make us hammer a provider. A failed fetch
    is remembered for `failure_ttl_s`, so a dead provider costs one timeout, not one per request.
    """

    def __init__(self, *, ttl_s: float = 300.0, min_refresh_s: float = 10.0,
                 failure_ttl_s: float = 1.0, timeout_s: float = 5.0,
                 monotonic: Callable[[], float] = time.monotonic):
        self.ttl_s = ttl_s
        self.min_refresh_s = min_refresh_s
        self.failure_ttl_s = failure_ttl_s
        self.timeout_s = timeout_s
        self._monotonic = monotonic
        self._entries: dict[tuple[str, str], _CacheEntry] = {}
        self._local: dict[str, Callable[[], Any]] = {}
        self._lock = threading.Lock()
        self.fetch_count = 0

    def register_local(self, url: str, produce: Callable[[], Any]) -> None:
        """Serve `url` from memory (the built-in issuer: no HTTP request to ourselves)."""
        self._local[url] = produce

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _fresh(self, entry: _CacheEntry | None, force: bool) -> bool:
        if entry is None:
            return False
        age = self._monotonic() - entry.fetched_at
        if entry.error is not None:
            return age < self.failure_ttl_s
        return age < self.ttl_s and not (force and age >= self.min_refresh_s)

    def _get(self, kind: str, url: str, load: Callable[[], Any], force: bool) -> Any:
        with self._lock:
            entry = self._entries.get((kind, url))
        if not self._fresh(entry, force):
            try:
                entry = _CacheEntry(load(), self._monotonic())
            except ApiError as error:
                entry = _CacheEntry(None, self._monotonic(), error)
            with self._lock:
                self._entries[(kind, url)] = entry
        if entry.error is not None:
            raise _copy_error(entry.error)  # a fresh exception per raise (threads, tracebacks)
        return entry.value

    def _http_get(self, url: str) -> tuple[int, str | None, bytes]:
        """GET with a timeout, no redirects and a bounded body: (status, content type, body)."""
        self.fetch_count += 1
        with httpx.Client(timeout=self.timeout_s, follow_redirects=False) as client:
            with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise _FetchFailed("response too large")
                return response.status_code, response.headers.get("content-type"), bytes(body)

    def _fetch_bytes(self, url: str) -> tuple[bytes, str | None]:
        """(body, content type); raises _FetchFailed. Local URLs are served from memory."""
        local = self._local.get(url)
        if local is not None:
            return json.dumps(local()).encode(), "application/json"
        try:
            status, content_type, body = self._http_get(url)
        except _FetchFailed:
            raise
        except (httpx.HTTPError, ValueError) as error:
            raise _FetchFailed(_describe_http_error(error)) from None
        if status != 200:
            raise _FetchFailed("status", status, body)
        return body, content_type

    # customJwt ------------------------------------------------------------------------------

    def custom_jwks(self, jwks_uri: str, *, force: bool = False) -> KeySet:
        return self._get("jwks", jwks_uri, lambda: self._load_custom_jwks(jwks_uri), force)

    def _load_custom_jwks(self, jwks_uri: str) -> KeySet:
        """`fetch_jwks` + the JWKSet parse, with Convex's 401 messages."""
        if jwks_uri.startswith("data:"):
            try:
                body = _decode_data_url(jwks_uri)
            except (ValueError, binascii.Error):
                raise _unauthenticated("InvalidAuthHeader", MSG_BAD_DATA_URL) from None
        else:
            body = self._fetch_custom(jwks_uri)
        try:
            return parse_jwks(body)
        except (ValueError, UnicodeDecodeError):
            raise _unauthenticated(
                "InvalidAuthHeader",
                f"Invalid JWKS response body from '{jwks_uri}'. The response is not valid JSON "
                "or doesn't match the expected JWKS format.",
            ) from None

    def _fetch_custom(self, jwks_uri: str) -> bytes:
        try:
            body, content_type = self._fetch_bytes(jwks_uri)
        except _FetchFailed as failure:
            if failure.status is None:
                reason = str(failure)
            else:
                reason = f"HTTP {failure.status} {_reason(failure.status)}"
            raise _unauthenticated(
                "InvalidAuthHeader",
                f"Could not fetch JWKS from URL '{jwks_uri}': {reason}. Check that the URL is "
                "correct and accessible.",
            ) from None
        if not _content_type_ok(content_type):
            raise _unauthenticated(
                "InvalidAuthHeader",
                f"Invalid Content-Type '{content_type or 'unknown'}' when fetching JWKS from "
                f"'{jwks_uri}'. Expected 'application/json' or 'application/jwk-set+json'.",
            )
        return body

    # OIDC -------------------------------------------------------------------------------------

    def discover(self, issuer: str, *, force: bool = False) -> tuple[str, KeySet]:
        """OpenID discovery from the token's `iss`: (metadata issuer, JWKS)."""
        return self._get("oidc", issuer, lambda: self._load_discovery(issuer), force)

    def _load_discovery(self, issuer: str) -> tuple[str, KeySet]:
        failed = f"Auth provider discovery of {issuer} failed"
        if not _SCHEME.match(issuer):
            raise ApiError(400, "AuthProviderDiscoveryFailed", failed)
        base = issuer if issuer.endswith("/") else issuer + "/"
        document = self._discovery_json(base + ".well-known/openid-configuration", failed)
        metadata_issuer = document.get("issuer")
        jwks_uri = document.get("jwks_uri")
        if metadata_issuer != issuer or not isinstance(jwks_uri, str):
            detail = f"unexpected issuer URI `{metadata_issuer}` (expected `{issuer}`)"
            raise _discovery_error(400, failed, detail)
        jwks_document = self._discovery_json(jwks_uri, failed, jwks=True)
        try:
            return metadata_issuer, parse_jwks(jwks_document, lenient=True)
        except ValueError:
            raise _discovery_error(400, failed, "invalid JWK set") from None

    def _discovery_json(self, url: str, failed: str, *, jwks: bool = False) -> dict:
        try:
            body, content_type = self._fetch_bytes(url)
        except _FetchFailed as failure:
            if failure.status is None:
                raise _discovery_error(400, failed, str(failure)) from None
            status = failure.status
            message = f"{failed}: {status} {_reason(status)} {failure.body.decode('utf-8', 'replace')}"
            raise _discovery_error(_status_for(status), message, None) from None
        essence = (content_type or "").split(";")[0].strip().lower()
        allowed = JWKS_MEDIA_TYPES if jwks else ("application/json",)
        if essence not in allowed:
            raise _discovery_error(400, failed, f"unexpected response Content-Type: {content_type}")
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise _discovery_error(400, failed, "response is not JSON") from None
        if not isinstance(document, dict):
            raise _discovery_error(400, failed, "response is not a JSON object")
        return document


def _copy_error(error: ApiError) -> ApiError:
    copy = ApiError(error.status, error.code, error.message)
    copy.detail = getattr(error, "detail", None)
    return copy


def _describe_http_error(error: Exception) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, httpx.TimeoutException):
        return f"timed out ({text})"
    return text


def _status_for(upstream: int) -> int:
    """`ErrorCode::from_http_status_code` then back to a status, as Convex maps it."""
    if upstream in (401, 403, 404, 429, 425, 421):
        return upstream
    if 400 <= upstream < 500:
        return 400
    if upstream >= 500:
        return 503
    return 400


def _discovery_error(status: int, message: str, detail: str | None) -> ApiError:
    error = ApiError(status, "AuthProviderDiscoveryFailed", message)
    error.detail = detail
    return error


# --- verification ------------------------------------------------------------------------


@dataclass
class _Token:
    """A JWT split into parts, with the unverified header and payload."""

    raw: str
    parts: list[str]
    payload: dict
    header: dict | None

    @property
    def signing_input(self) -> bytes:
        return f"{self.parts[0]}.{self.parts[1]}".encode()

    def signature(self) -> bytes | None:
        try:
            return _b64url_decode(self.parts[2])
        except (ValueError, IndexError):
            return None

    @property
    def kid(self) -> str | None:
        kid = (self.header or {}).get("kid")
        return kid if isinstance(kid, str) else None

    @property
    def alg(self) -> str | None:
        alg = (self.header or {}).get("alg")
        return alg if isinstance(alg, str) else None


def _decode_json_part(part: str) -> Any:
    return json.loads(_b64url_decode(part))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _registered_claims_ok(payload: dict) -> bool:
    """biscuit's `RegisteredClaims` deserialisation: the types Convex's pre-parse accepts."""
    for name in ("iss", "sub", "jti"):
        if name in payload and not isinstance(payload[name], (str, type(None))):
            return False
    for name in ("exp", "nbf", "iat"):
        if name in payload and payload[name] is not None and not _is_int(payload[name]):
            return False
    aud = payload.get("aud")
    if isinstance(aud, list):
        return all(isinstance(item, str) for item in aud)
    return aud is None or isinstance(aud, str)


def split_token(token: str) -> _Token:
    """Parse the payload unverified (Convex's first step); 401 InvalidAuthHeader if not a JWT."""
    parts = token.split(".") if isinstance(token, str) else []
    try:
        payload = _decode_json_part(parts[1])
    except (ValueError, IndexError, UnicodeDecodeError):
        raise _unauthenticated("InvalidAuthHeader", MSG_PARSE_PAYLOAD) from None
    if not isinstance(payload, dict) or not _registered_claims_ok(payload):
        raise _unauthenticated("InvalidAuthHeader", MSG_PARSE_PAYLOAD)
    try:
        header = _decode_json_part(parts[0])
    except (ValueError, UnicodeDecodeError):
        header = None
    return _Token(token, parts, payload, header if isinstance(header, dict) else None)


def _audiences(payload: dict) -> list[str]:
    aud = payload.get("aud")
    if aud is None:
        return []
    return [aud] if isinstance(aud, str) else list(aud)


def _identity_from_claims(claims: dict, provider_kind: str) -> Identity:
    from console import tokens  # the shared UserIdentity mapping (PROTOCOL §6.3)

    return Identity.user(tokens.user_identity_from_claims(claims, provider_kind))


@dataclass
class _Verified:
    identity: Identity
    valid_until: float  # seconds; the token is accepted while now < valid_until


class TokenVerifier:
    """Verifies Bearer JWTs against a provider list, as Convex's `validate_id_token` does."""

    def __init__(self, providers: list[AuthProvider], *, jwks: JwksCache | None = None,
                 now_s: Callable[[], float] | None = None, cache_size: int = 10_000):
        self.providers = list(providers)
        self.jwks = jwks or JwksCache()
        self._now_s = now_s or time.time
        self._cache: OrderedDict[str, _Verified] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    # The cheap path: a token verified before and not yet expired.
    def cached(self, token: str) -> Identity | None:
        entry = self._cache.get(token)
        if entry is None:
            return None
        if self._now_s() < entry.valid_until:
            return entry.identity
        with self._lock:
            self._cache.pop(token, None)
        return None

    def valid_until(self, token: str) -> float | None:
        """When a verified token stops being accepted (unix seconds), if it is cached."""
        entry = self._cache.get(token)
        return entry.valid_until if entry is not None else None

    def verify(self, token: str) -> Identity:
        identity = self.cached(token)
        if identity is not None:
            return identity
        identity, valid_until = self._verify_uncached(token)
        with self._lock:
            self._cache[token] = _Verified(identity, valid_until)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return identity

    async def averify(self, token: str) -> Identity:
        """Like `verify`, but network fetches run in a thread (never block the event loop)."""
        identity = self.cached(token)
        if identity is not None:
            return identity
        return await asyncio.to_thread(self.verify, token)

    def _now(self) -> int:
        return int(self._now_s())  # Convex compares whole seconds

    def _verify_uncached(self, token: str) -> tuple[Identity, float]:
        parsed = split_token(token)
        issuer = parsed.payload.get("iss")
        if issuer is None:
            raise _unauthenticated("InvalidAuthHeader", MSG_MISSING_ISS)
        audiences = _audiences(parsed.payload)
        provider = next((p for p in self.providers if p.matches(audiences, issuer)), None)
        if provider is None:
            raise _unauthenticated("NoAuthProvider", no_provider_message(self.providers))
        if provider.kind == "oidc":
            return self._verify_oidc(parsed, provider, issuer)
        return self._verify_custom(parsed, provider)

    # OIDC -------------------------------------------------------------------------------------

    def _verify_oidc(self, token: _Token, provider: AuthProvider, issuer: str):
        metadata_issuer, key_set = self.jwks.discover(issuer)
        payload = token.payload
        if token.header is None or len(token.parts) != 3 or not _oidc_claims_ok(payload):
            raise _unauthenticated("InvalidAuthHeader", MSG_OIDC_PARSE)
        failure = self._oidc_failure(token, provider, metadata_issuer, key_set, issuer)
        if failure is not None:
            raise _unauthenticated("Unauthenticated", MSG_OIDC_VERIFY, failure)
        return _identity_from_claims(payload, "oidc"), float(payload["exp"])

    def _oidc_failure(self, token: _Token, provider: AuthProvider, metadata_issuer: str,
                      key_set: KeySet, issuer: str) -> str | None:
        """Why openidconnect's `IdTokenVerifier` would reject the token, or None."""
        header, payload = token.header or {}, token.payload
        problem = _oidc_header_problem(header)
        if problem:
            return problem
        if payload.get("iss") != metadata_issuer:
            return f"issuer: expected `{metadata_issuer}` (found `{payload.get('iss')}`)"
        audiences = _audiences(payload)
        if provider.application_id not in audiences:
            return f"audience: must contain `{provider.application_id}`"
        others = [aud for aud in audiences if aud != provider.application_id]
        if others:
            return f"audience: `{others[0]}` is not a trusted audience (several audiences)"
        alg = token.alg
        if alg not in OIDC_ALGORITHMS:
            return f"algorithm `{alg}` is not one of: {', '.join(OIDC_ALGORITHMS)}"
        problem = self._oidc_signature_problem(token, alg, key_set, issuer)
        if problem:
            return problem
        if self._now() >= payload["exp"]:
            return f"ID token expired at {payload['exp']} (current time is {self._now()})"
        return None

    def _oidc_signature_problem(self, token: _Token, alg: str, key_set: KeySet,
                                issuer: str) -> str | None:
        candidates = _oidc_candidates(key_set, token.kid, alg)
        if not candidates and token.kid is not None:
            _, key_set = self.jwks.discover(issuer, force=True)  # maybe the keys rotated
            candidates = _oidc_candidates(key_set, token.kid, alg)
        if not candidates:
            return "no matching key in the provider's JWKS"
        if len(candidates) > 1:
            return f"JWK set must only contain one eligible public key, found {len(candidates)}"
        signature = token.signature()
        if signature is None or not candidates[0].verifies(alg, token.signing_input, signature):
            return "signature verification failed"
        return None

    # customJwt --------------------------------------------------------------------------------

    def _verify_custom(self, token: _Token, provider: AuthProvider):
        key_set = self.jwks.custom_jwks(provider.jwks)
        self._custom_signature(token, provider, key_set)
        payload = token.payload
        token_issuer = payload["iss"]
        if _with_protocol(token_issuer).rstrip("/") != provider.issuer.rstrip("/"):
            raise _unauthenticated(
                "InvalidAuthHeader", f"Invalid issuer: {token_issuer} != {provider.issuer}"
            )
        self._custom_audience(payload, provider)
        self._custom_times(payload)
        if not isinstance(payload.get("sub"), str) or payload.get("exp") is None:
            missing = "sub" if not isinstance(payload.get("sub"), str) else "exp"
            raise _unauthenticated("InvalidAuthHeader", MSG_CUSTOM_CLAIMS, f"missing {missing}")
        identity = _identity_from_claims(payload, "customJwt")
        return identity, float(payload["exp"] + LEEWAY_S + 1)

    def _custom_signature(self, token: _Token, provider: AuthProvider, key_set: KeySet) -> None:
        """biscuit's `decode_with_jwks(jwks, Some(algorithm))`."""
        kid = token.kid
        message = kid_message(kid) if kid is not None else MSG_MISSING_KID
        if len(token.parts) != 3 or token.header is None or kid is None:
            raise _unauthenticated("InvalidAuthHeader", message, "token has no 'kid' header")
        key = key_set.find(kid)
        if key is None:
            key = self.jwks.custom_jwks(provider.jwks, force=True).find(kid)
        if key is None:
            raise _unauthenticated("InvalidAuthHeader", message, "no key with this kid")
        expected = provider.algorithm
        if not _key_type_fits(key, expected):
            raise _unauthenticated("InvalidAuthHeader", message, f"the key cannot verify {expected}")
        if key.alg is not None and key.alg != token.alg:
            raise _unauthenticated("InvalidAuthHeader", message, "JWK alg differs from the header's")
        if token.alg != expected:
            detail = f"token alg {token.alg} but the provider expects {expected}"
            raise _unauthenticated("InvalidAuthHeader", message, detail)
        signature = token.signature()
        if signature is None or not key.verifies(expected, token.signing_input, signature):
            raise _unauthenticated("InvalidAuthHeader", message, "signature verification failed")

    @staticmethod
    def _custom_audience(payload: dict, provider: AuthProvider) -> None:
        if provider.application_id is None:
            return
        if payload.get("aud") is None:
            raise _unauthenticated("InvalidAuthHeader", MSG_MISSING_AUD)
        audiences = _audiences(payload)
        if provider.application_id not in audiences:
            listed = "[" + ", ".join(json.dumps(aud) for aud in audiences) + "]"
            raise _unauthenticated(
                "InvalidAuthHeader", f"Invalid audience: {provider.application_id} not in {listed}"
            )

    def _custom_times(self, payload: dict) -> None:
        """biscuit's temporal validation with a 5 s epsilon: exp, then nbf, then iat."""
        now = self._now()
        exp, nbf, iat = payload.get("exp"), payload.get("nbf"), payload.get("iat")
        if exp is not None and now - exp > LEEWAY_S:
            reason = f"Token expired {now - exp} seconds ago"
        elif nbf is not None and nbf - now > LEEWAY_S:
            reason = f"Token will be valid in {nbf - now} seconds"
        elif iat is not None and iat - now > LEEWAY_S:
            reason = f"Token will be valid in {iat - now} seconds"
        else:
            return
        raise _unauthenticated("InvalidAuthHeader", f"Could not validate token: {reason}")


def _key_type_fits(key: JsonWebKey, alg: str) -> bool:
    if alg == "ES256":
        return key.kty == "EC" and key.crv == "P-256"
    return key.kty == "RSA"


def _oidc_claims_ok(payload: dict) -> bool:
    """What openidconnect's `IdTokenClaims` needs to deserialise."""
    issuer = payload.get("iss")
    return (
        isinstance(issuer, str)
        and bool(_SCHEME.match(issuer))
        and _is_int(payload.get("exp"))
        and _is_int(payload.get("iat"))
        and isinstance(payload.get("sub"), str)
    )


def _oidc_header_problem(header: dict) -> str | None:
    typ = header.get("typ")
    if typ is not None:
        normalized = str(typ).lower()
        if "/" not in normalized:
            normalized = "application/" + normalized
        if normalized != "application/jwt":
            return f"unexpected or unsupported JWT type `{typ}`"
    if "cty" in header:
        return f"unexpected or unsupported JWT content type `{header['cty']}`"
    if "crit" in header:
        return "critical JWT header fields are unsupported"
    return None


def _oidc_candidates(key_set: KeySet, kid: str | None, alg: str) -> list[JsonWebKey]:
    return [
        key for key in key_set.keys
        if (kid is None or key.kid == kid) and key.compatible_with(alg)
    ]
