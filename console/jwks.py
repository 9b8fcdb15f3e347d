"""Signature verification (PROTOCOL §6): keys from OIDC discovery, a JWKS URL, a data: URL, a PEM key or
a secret, and keys typed by a person. The logic is a generator that yields the URLs it needs, so the
sync and async drivers share every rule. jwt, cryptography and httpx load lazily."""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generator

from console.auth_providers import normalize_issuer
from console.jwt_decode import DEFAULT_TIMEOUT, ERROR, JWKS_CONTENT_TYPES, WARNING, DecodedToken, Problem

if TYPE_CHECKING:  # imported lazily: jwt + cryptography + httpx cost ~150 ms, masking needs none
    import httpx

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
