"""The emulator's built-in OIDC development issuer (RS256 key per data dir) and token minting,
so everything works offline.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from console.emulator.jwt_verifier import _b64url
DEV_ISSUER_PATH = "/emulator-auth"
DEV_ISSUER_KEY_FILE = "dev_issuer_key.pem"
DEV_ISSUER_INFO_FILE = "dev_issuer.json"
DEFAULT_CLOUD_URL = "http://127.0.0.1:3210"

# --- the built-in development issuer -----------------------------------------------------


def _jwk_thumbprint(public_numbers: rsa.RSAPublicNumbers) -> str:
    """RFC 7638 thumbprint: a stable `kid` for the key."""
    def b64_int(value: int) -> str:
        return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    canonical = json.dumps(
        {"e": b64_int(public_numbers.e), "kty": "RSA", "n": b64_int(public_numbers.n)},
        separators=(",", ":"), sort_keys=True,
    )
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def _write_private_file(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 from the start (never world-readable, not even briefly)."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def parse_ttl(text: str | int | float) -> int:
    """"1h", "30m", "45s", "2d", or seconds -> seconds (positive)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = int(text)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text))
        if not match:
            raise ValueError(f"Invalid TTL {text!r}: use e.g. 3600, 90s, 30m, 1h or 2d")
        unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        seconds = int(float(match.group(1)) * unit)
    if seconds <= 0:
        raise ValueError("The TTL must be positive")
    return seconds


class DevIssuer:
    """An OIDC issuer inside the emulator: RS256 key, discovery document, JWKS, `mint`.

    The key is loaded (or generated: ~0.15 s) on first use, so a deployment that never
    touches auth doesn't pay for it.
    """

    def __init__(self, private_key: rsa.RSAPrivateKey | None = None,
                 issuer_url: str | None = None, data_dir: Path | None = None):
        self.data_dir = Path(data_dir) if data_dir else None
        self.issuer_url = issuer_url or default_issuer_url(DEFAULT_CLOUD_URL)
        self._private_key = private_key
        self._public_jwk: dict | None = None
        self._lock = threading.Lock()

    @classmethod
    def load_or_create(cls, data_dir: str | Path | None) -> "DevIssuer":
        """The data dir's key (PEM, 0600), created on first use; in memory without a data dir."""
        if data_dir is None:
            return cls()
        return cls(None, stored_issuer_url(data_dir), Path(data_dir))

    def _key(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._private_key is None:
                self._private_key = self._load_or_generate()
                self._public_jwk = None
            return self._private_key

    def _load_or_generate(self) -> rsa.RSAPrivateKey:
        if self.data_dir is None:
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path = self.data_dir / DEV_ISSUER_KEY_FILE
        if path.exists():
            return serialization.load_pem_private_key(path.read_bytes(), password=None)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private_file(path, pem)
        return key

    def public_jwk(self) -> dict:
        if self._public_jwk is None:
            public = self._key().public_key()
            jwk = json.loads(RSAAlgorithm.to_jwk(public))
            jwk.update({"kid": _jwk_thumbprint(public.public_numbers()), "alg": "RS256",
                        "use": "sig"})
            self._public_jwk = jwk
        return self._public_jwk

    @property
    def kid(self) -> str:
        return self.public_jwk()["kid"]

    def set_base_url(self, cloud_url: str) -> None:
        """Set the issuer from the emulator's cloud URL; remembered in the data dir for the CLI."""
        self.issuer_url = default_issuer_url(cloud_url)
        if self.data_dir is not None:
            info = json.dumps({"issuer": self.issuer_url}).encode()
            _write_private_file(self.data_dir / DEV_ISSUER_INFO_FILE, info)

    @property
    def jwks_uri(self) -> str:
        return self.issuer_url + "/.well-known/jwks.json"

    @property
    def discovery_url(self) -> str:
        return self.issuer_url + "/.well-known/openid-configuration"

    def jwks(self) -> dict:
        return {"keys": [dict(self.public_jwk())]}

    def discovery(self) -> dict:
        return {
            "issuer": self.issuer_url,
            "jwks_uri": self.jwks_uri,
            "authorization_endpoint": self.issuer_url + "/authorize",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "name", "email"],
        }

    def mint(self, sub: str, aud: str | list[str] | None = "convex", ttl: int | str = 3600,
             claims: dict | None = None, *, now: float | None = None) -> str:
        """A signed RS256 JWT from this issuer. `claims` may override anything but `iss`."""
        if not isinstance(sub, str) or not sub:
            raise ValueError("A token needs a non-empty subject (sub)")
        issued = int(time.time() if now is None else now)
        payload: dict[str, Any] = {"sub": sub, "iat": issued, "exp": issued + parse_ttl(ttl)}
        if aud is not None:
            payload["aud"] = aud
        payload.update(claims or {})
        payload["iss"] = self.issuer_url
        headers = {"kid": self.kid, "typ": "JWT"}
        return pyjwt.encode(payload, self._key(), algorithm="RS256", headers=headers)


def default_issuer_url(cloud_url: str) -> str:
    return cloud_url.rstrip("/") + DEV_ISSUER_PATH


def stored_issuer_url(data_dir: str | Path) -> str | None:
    """The issuer URL the emulator last announced for this data dir, if any."""
    try:
        info = json.loads((Path(data_dir) / DEV_ISSUER_INFO_FILE).read_text())
    except (OSError, ValueError):
        return None
    issuer = info.get("issuer") if isinstance(info, dict) else None
    return issuer if isinstance(issuer, str) else None
