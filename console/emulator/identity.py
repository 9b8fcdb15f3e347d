"""Who runs a function: admin, system, a user, an admin acting as a user, or anonymous.

As on Convex (`ValidatedPathAndArgs::new_inner`), an admin acting as a user keeps admin
privileges for access checks (internal functions are callable) while `ctx.auth` sees the
user identity.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# The `identityType` Convex writes in function logs (`InertIdentity::tag`).
_IDENTITY_TYPES = {
    "admin": "instance_admin",
    "system": "system",
    "user": "user",
    "acting_as": "member_acting_user",
    "anonymous": "unknown",
}

# The issuer `npx convex run --identity` uses when none is given (`getFakeIdentity`).
DEFAULT_FAKE_ISSUER = "https://convex.test"


@dataclass(frozen=True)
class Identity:
    kind: str
    attributes: dict | None = field(default=None, compare=False)

    @classmethod
    def admin(cls) -> "Identity":
        return cls("admin")

    @classmethod
    def system(cls) -> "Identity":
        return cls("system")

    @classmethod
    def anonymous(cls) -> "Identity":
        return cls("anonymous")

    @classmethod
    def user(cls, attrs: dict) -> "Identity":
        """A user with a verified token: `attrs` are UserIdentity fields (PROTOCOL §6.3)."""
        return cls("user", user_identity(attrs))

    @classmethod
    def acting_as(cls, attrs: dict) -> "Identity":
        """An admin acting as a user; missing subject/issuer get the Convex CLI's defaults."""
        return cls("acting_as", user_identity(fake_identity_defaults(attrs)))

    @property
    def is_admin(self) -> bool:
        return self.kind in ("admin", "acting_as")

    @property
    def is_system(self) -> bool:
        return self.kind == "system"

    @property
    def can_call_internal(self) -> bool:
        """Internal functions and `_system/*` need an admin or system identity."""
        return self.kind in ("admin", "acting_as", "system")

    @property
    def user_attributes(self) -> dict | None:
        """What `ctx.auth.get_user_identity()` returns: the UserIdentity dict, or None."""
        if self.attributes is None:
            return None
        return dict(self.attributes)

    @property
    def identity_type(self) -> str:
        return _IDENTITY_TYPES[self.kind]

    def __repr__(self) -> str:  # never print token contents in full
        if self.attributes is None:
            return f"Identity.{self.kind}()"
        return f"Identity.{self.kind}(tokenIdentifier={self.attributes.get('tokenIdentifier')!r})"


def user_identity(attrs: dict) -> dict:
    """A UserIdentity dict: `tokenIdentifier` set (default `issuer|subject`), others kept.

    Raises ValueError as Convex does when neither `tokenIdentifier` nor issuer+subject are set.
    """
    if not isinstance(attrs, dict):
        raise ValueError("A user identity must be a JSON object")
    result = {key: val for key, val in attrs.items() if val is not None}
    custom = result.pop("customClaims", None)
    if isinstance(custom, dict):  # the dashboard's form nests custom claims
        for key, val in custom.items():
            result.setdefault(key, val)
    if "tokenIdentifier" not in result:
        issuer, subject = result.get("issuer"), result.get("subject")
        if issuer is None or subject is None:
            raise ValueError('Either "tokenIdentifier" or "issuer" and "subject" must be set')
        result["tokenIdentifier"] = f"{issuer}|{subject}"
    return result


def fake_identity_defaults(attrs: dict) -> dict:
    """Fill subject, issuer and tokenIdentifier as `npx convex run --identity` does."""
    if not isinstance(attrs, dict):
        raise ValueError("A user identity must be a JSON object")
    result = dict(attrs)
    if "subject" not in result:
        result["subject"] = str(_simple_hash(_js_json(attrs)))
    result.setdefault("issuer", DEFAULT_FAKE_ISSUER)
    result.setdefault("tokenIdentifier", f"{result['issuer']}|{result['subject']}")
    return result


def _js_json(value: Any) -> str:
    """JSON.stringify's compact form (insertion order kept)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _simple_hash(text: str) -> int:
    """The CLI's 32-bit string hash, over UTF-16 code units like `charCodeAt`."""
    hash_value = 0
    units = text.encode("utf-16-le", "surrogatepass")
    for index in range(0, len(units), 2):
        code = units[index] | (units[index + 1] << 8)
        hash_value = ((hash_value << 5) - hash_value + code) & 0xFFFFFFFF
    return hash_value - (1 << 32) if hash_value & 0x80000000 else hash_value
