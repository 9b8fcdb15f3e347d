"""A connection to a Convex deployment: its URLs, its credential and how to show it.

Facts used (PROTOCOL §1.4, §7): cloud deployments live at `https://NAME[.REGION].convex.cloud`
with HTTP actions at the matching `.convex.site`; local backends serve the API on one port
(3210) and HTTP actions on another (3211); self-hosted backends also serve HTTP actions under
`/http/` of the API origin. Admin and deploy keys are both sent as `Authorization: Convex <key>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import urlsplit

CredentialKind = Literal["admin_key", "deploy_key", "none"]
DeploymentKind = Literal["cloud", "self-hosted", "local", "emulator"]
KINDS: tuple[str, ...] = ("cloud", "self-hosted", "local", "emulator")

# backend:crates/common/src/http/mod.rs CONVEX_DOMAIN_REGEX, anchored on the host name.
_CONVEX_HOST = re.compile(
    r"^(?P<instance>[A-Za-z0-9-]+)(?P<region>\.[A-Za-z0-9-]+)?\.convex\.(?P<tld>cloud|site)$"
)
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}
_KEY_TYPES = ("prod", "dev", "preview", "project", "local", "anonymous")


class InvalidConnection(ValueError):
    """A URL or credential that cannot be used; the message is one line, safe to show."""


def mask_secret(secret: str | None) -> str:
    """`prod:happy-otter-123|<secret>` -> `prod:happy-otter-123|••••a1b2` (console.tokens)."""
    from console.tokens import mask_secret as shared_mask  # lazy: tokens imports cryptography

    return shared_mask(secret or "")


@dataclass(frozen=True)
class Credential:
    """An admin key, a deploy key, or nothing. `repr` never shows the secret."""

    kind: CredentialKind = "none"
    secret: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in ("admin_key", "deploy_key", "none"):
            raise InvalidConnection(f"Unknown credential kind {self.kind!r}")
        if self.kind == "none":
            if self.secret:
                raise InvalidConnection("A credential of kind 'none' cannot hold a key")
            return
        _check_key(self.secret)

    @classmethod
    def admin_key(cls, key: str) -> "Credential":
        return cls("admin_key", key.strip() if isinstance(key, str) else key)

    @classmethod
    def deploy_key(cls, key: str) -> "Credential":
        return cls("deploy_key", key.strip() if isinstance(key, str) else key)

    @classmethod
    def none(cls) -> "Credential":
        return cls("none", None)

    @property
    def is_admin(self) -> bool:
        return self.kind != "none"

    def authorization(self) -> str | None:
        """The `Authorization` header value (both key kinds use `Convex <key>`)."""
        return f"Convex {self.secret}" if self.secret else None

    @property
    def masked(self) -> str:
        return mask_secret(self.secret) if self.secret else "no key"

    @property
    def key_type(self) -> str | None:
        """`prod` / `dev` / `preview` ... from a key like `prod:name|secret`, else None."""
        head = (self.secret or "").partition("|")[0]
        kind, colon, _ = head.partition(":")
        return kind if colon and kind in _KEY_TYPES else None

    @property
    def key_deployment(self) -> str | None:
        """The deployment (or instance) name a key names: `prod:NAME|..` or `NAME|..`."""
        if not self.secret or "|" not in self.secret:
            return None
        head = self.secret.partition("|")[0]
        name = head.split(":")[-1] if ":" in head else head
        return name or None

    def __repr__(self) -> str:
        return f"Credential(kind={self.kind!r}, secret={self.masked!r})"


def _check_key(key: object) -> None:
    if not isinstance(key, str) or not key:
        raise InvalidConnection("The key is empty")
    if any(ch.isspace() for ch in key) or not key.isprintable() or not key.isascii():
        raise InvalidConnection("The key contains spaces or non-printable characters")


@dataclass(frozen=True)
class Connection:
    """Where a deployment is and how we authenticate to it."""

    url: str
    site_url: str
    credential: Credential = field(default_factory=Credential.none)
    kind: DeploymentKind = "self-hosted"
    deployment_name: str | None = None  # e.g. happy-otter-123, local-team-project
    deployment_type: str | None = None  # prod / dev / preview / local / anonymous

    @classmethod
    def create(
        cls,
        url: str,
        *,
        site_url: str | None = None,
        admin_key: str | None = None,
        deploy_key: str | None = None,
        kind: DeploymentKind | None = None,
        deployment_name: str | None = None,
        deployment_type: str | None = None,
    ) -> "Connection":
        """Validate `url`, derive what is missing; raises InvalidConnection (one line)."""
        if admin_key and deploy_key:
            raise InvalidConnection("Give either an admin key or a deploy key, not both")
        url = normalize_deployment_url(url)
        site = normalize_url(site_url, what="HTTP-actions URL") if site_url else derive_site_url(url)
        if admin_key:
            credential = Credential.admin_key(admin_key)
        elif deploy_key:
            credential = Credential.deploy_key(deploy_key)
        else:
            credential = Credential.none()
        if kind is not None and kind not in KINDS:
            raise InvalidConnection(f"Unknown deployment kind {kind!r} (one of {', '.join(KINDS)})")
        return cls(
            url=url,
            site_url=site,
            credential=credential,
            kind=kind or guess_kind(url),
            deployment_name=deployment_name or _name_from_url(url) or credential.key_deployment,
            deployment_type=deployment_type or credential.key_type,
        )

    def with_credential(self, credential: Credential) -> "Connection":
        return replace(
            self,
            credential=credential,
            deployment_type=self.deployment_type or credential.key_type,
            deployment_name=self.deployment_name or credential.key_deployment,
        )

    @property
    def port(self) -> int | None:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def display_name(self) -> str:
        """`prod:happy-otter-123`, `local:3210`, `emulator:3210`, `self-hosted:host:port`."""
        if self.kind == "cloud":
            name = self.deployment_name or self.host
            return f"{self.deployment_type}:{name}" if self.deployment_type else name
        if self.kind in ("local", "emulator"):
            return f"{self.kind}:{self.port}"
        return f"self-hosted:{urlsplit(self.url).netloc}"

    @property
    def display_credential(self) -> str:
        """The credential, masked: `prod:happy-otter-123|••••a1b2`, or `no key`."""
        return self.credential.masked

    @property
    def is_production(self) -> bool:
        """True when writes deserve an extra confirmation."""
        return self.deployment_type == "prod" or self.credential.key_type == "prod"

    def summary(self) -> str:
        """One line, safe to print: name, kind, URL and masked key."""
        return (
            f"{self.display_name} ({self.kind}) {self.url} "
            f"[site {self.site_url}] key: {self.display_credential}"
        )

    def __repr__(self) -> str:
        return (
            f"Connection(url={self.url!r}, site_url={self.site_url!r}, kind={self.kind!r}, "
            f"credential={self.credential!r})"
        )


def normalize_url(url: str, *, what: str = "URL") -> str:
    """Check scheme http/https and a host; drop a trailing slash. Raises InvalidConnection."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidConnection(f"{what} is empty")
    text = url.strip()
    if "://" not in text:
        raise InvalidConnection(f"{what} {text!r} has no scheme; use http:// or https://")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise InvalidConnection(f"{what} {text!r} is not valid: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidConnection(f"{what} {text!r} must start with http:// or https://")
    if not parts.hostname:
        raise InvalidConnection(f"{what} {text!r} has no host")
    if parts.query or parts.fragment:
        raise InvalidConnection(f"{what} {text!r} must not have a query or fragment")
    if any(ch.isspace() for ch in text):
        raise InvalidConnection(f"{what} {text!r} contains spaces")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def normalize_deployment_url(url: str) -> str:
    """As normalize_url, and refuse an HTTP-actions (`.convex.site`) URL with the reason."""
    normalized = normalize_url(url, what="Deployment URL")
    host = urlsplit(normalized).hostname or ""
    match = _CONVEX_HOST.match(host)
    if match and match["tld"] == "site":
        cloud = normalized.replace(".convex.site", ".convex.cloud", 1)
        raise InvalidConnection(
            f"{normalized} is an HTTP-actions URL (.convex.site); use the deployment URL {cloud}"
        )
    return normalized


def guess_kind(url: str) -> DeploymentKind:
    host = urlsplit(url).hostname or ""
    if _CONVEX_HOST.match(host):
        return "cloud"
    if host in _LOCAL_HOSTS:
        return "local"
    return "self-hosted"


def derive_site_url(url: str) -> str:
    """The HTTP-actions URL for a deployment URL (see the module docstring)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    match = _CONVEX_HOST.match(host)
    if match:
        site_host = f"{match['instance']}{match['region'] or ''}.convex.site"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{site_host}{port}"
    if host in _LOCAL_HOSTS and parts.port:
        bracketed = f"[{host}]" if ":" in host else host
        return f"{parts.scheme}://{bracketed}:{parts.port + 1}"
    return f"{url}/http"


def _name_from_url(url: str) -> str | None:
    match = _CONVEX_HOST.match(urlsplit(url).hostname or "")
    return match["instance"] if match else None
