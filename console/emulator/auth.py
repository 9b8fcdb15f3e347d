"""User auth for the emulator, as a Convex deployment does it (PROTOCOL §6).

- Providers as `auth.config.ts` declares them: OIDC `{domain, applicationID}` and
  `{type: "customJwt", issuer, jwks, algorithm, applicationID?}` (`parse_provider`).
- `TokenVerifier.verify(jwt) -> Identity`: the steps and 401 messages of Convex's
  `validate_id_token` (authentication crate), with JWKS/discovery caching and a cache of
  verified tokens (by token string, until they expire).
- `DevIssuer`: a built-in OIDC issuer (RS256 key per data dir) so everything works offline;
  an app refers to it symbolically with `DEV_ISSUER`, resolved once the emulator's URL is known.
- `EmulatorAuth`: the per-deployment bundle; `verify_bearer(token, deployment)` for the servers.

The parts live in `auth_providers` (provider config), `jwt_verifier` (discovery, JWKS, verification)
and `dev_issuer` (the built-in issuer); this module re-exports their names, so importers of
`console.emulator.auth` see the same surface as before the split.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable

from console.emulator.auth_providers import (  # noqa: F401  (re-exported: console.emulator.auth's surface)
    app_provider_configs,
    AuthProvider,
    CUSTOM_JWT_ALGORITHMS,
    DEV_ISSUER,
    normalize_issuer_url,
    parse_provider,
    parse_providers,
)
from console.emulator.dev_issuer import (  # noqa: F401  (re-exported: console.emulator.auth's surface)
    DEFAULT_CLOUD_URL,
    default_issuer_url,
    DEV_ISSUER_INFO_FILE,
    DEV_ISSUER_KEY_FILE,
    DEV_ISSUER_PATH,
    DevIssuer,
    parse_ttl,
    stored_issuer_url,
)
from console.emulator.identity import Identity
from console.emulator.jwt_verifier import (  # noqa: F401  (re-exported: console.emulator.auth's surface)
    JsonWebKey,
    JWKS_MEDIA_TYPES,
    JwksCache,
    KeySet,
    kid_message,
    LEEWAY_S,
    MAX_RESPONSE_BYTES,
    MSG_BAD_DATA_URL,
    MSG_CUSTOM_CLAIMS,
    MSG_MISSING_AUD,
    MSG_MISSING_ISS,
    MSG_MISSING_KID,
    MSG_OIDC_PARSE,
    MSG_OIDC_VERIFY,
    MSG_PARSE_PAYLOAD,
    no_provider_message,
    OIDC_ALGORITHMS,
    parse_jwks,
    split_token,
    TokenVerifier,
)

# Not a real Convex table number: `_auth` rows are synthesised from the app's config.
AUTH_TABLE_NUMBER = 10_001

# --- per-deployment bundle -----------------------------------------------------------------

_AUTH_BY_APP: "weakref.WeakKeyDictionary[Any, EmulatorAuth]" = weakref.WeakKeyDictionary()
_AUTH_BY_APP_ID: dict[int, "EmulatorAuth"] = {}


class EmulatorAuth:
    """Auth state of one deployment: its providers, the verifier, the built-in issuer.

    `cloud_url_from`/`app_from` (optional) are read lazily, so the issuer follows the port the
    emulator actually bound and the providers follow an app reload.
    """

    def __init__(self, *, app: Any = None, data_dir: str | Path | None = None,
                 now_s: Callable[[], float] = time.time, dev_issuer: DevIssuer | None = None,
                 jwks: JwksCache | None = None,
                 cloud_url_from: Callable[[], str | None] | None = None,
                 app_from: Callable[[], Any] | None = None):
        self.app = app
        self.data_dir = Path(data_dir) if data_dir else None
        self.now_s = now_s
        self.dev_issuer = dev_issuer or DevIssuer.load_or_create(self.data_dir)
        self.jwks = jwks or JwksCache()
        self._cloud_url_from = cloud_url_from
        self._app_from = app_from
        self._cloud_url: str | None = None
        self._verifier: TokenVerifier | None = None
        self._providers: list[AuthProvider] | None = None
        self._lock = threading.Lock()
        self.created_ms = float(int(now_s() * 1000))  # `_creationTime` of the `_auth` rows
        self._register_dev_issuer()
        _remember(self.app, self)

    @classmethod
    def for_clock(cls, clock: Any, **kwargs) -> "EmulatorAuth":
        """Use a deployment clock (`.now_ns()`), so a manual clock also ages tokens."""
        return cls(now_s=lambda: clock.now_ns() / 1e9, **kwargs)

    def _register_dev_issuer(self) -> None:
        issuer = self.dev_issuer
        self.jwks.register_local(issuer.discovery_url, issuer.discovery)
        self.jwks.register_local(issuer.jwks_uri, issuer.jwks)

    def refresh(self) -> None:
        """Pick up the deployment's current cloud URL and app now."""
        self._follow_sources()

    def _follow_sources(self) -> None:
        cloud_url = self._cloud_url_from() if self._cloud_url_from else None
        if cloud_url and cloud_url != self._cloud_url:
            self.set_base_url(cloud_url)
        app = self._app_from() if self._app_from else None
        if app is not None and app is not self.app:
            self.set_app(app)

    def set_base_url(self, cloud_url: str) -> None:
        """Called once the cloud URL (its port) is known: resolves `DEV_ISSUER`."""
        self._cloud_url = cloud_url
        self.dev_issuer.set_base_url(cloud_url)
        self._register_dev_issuer()
        self.reload()

    def set_app(self, app: Any) -> None:
        self.app = app
        _remember(app, self)
        self.reload()

    def reload(self) -> None:
        """Re-read the providers (after the app changed); verified tokens are forgotten."""
        with self._lock:
            self._providers = None
            self._verifier = None
        self.jwks.clear()

    def providers(self) -> list[AuthProvider]:
        self._follow_sources()
        providers = self._providers
        if providers is None:
            configs = app_provider_configs(self.app)
            providers = parse_providers(configs, dev_issuer_url=self.dev_issuer.issuer_url)
            self._providers = providers
        return providers

    def provider_documents(self) -> list[dict]:
        return [provider.to_document() for provider in self.providers()]

    @property
    def verifier(self) -> TokenVerifier:
        providers = self.providers()
        verifier = self._verifier
        if verifier is None:
            verifier = TokenVerifier(providers, jwks=self.jwks, now_s=self.now_s)
            self._verifier = verifier
        return verifier

    def cached(self, token: str) -> Identity | None:
        """The identity of a token verified before and still valid (no I/O), else None."""
        verifier = self._verifier
        return verifier.cached(token) if verifier is not None else None

    def verify(self, token: str) -> Identity:
        return self.verifier.verify(token)

    def valid_until(self, token: str) -> float | None:
        """For a verified token: the time (unix s, deployment clock) it expires, else None."""
        verifier = self._verifier
        return verifier.valid_until(token) if verifier is not None else None

    async def averify(self, token: str) -> Identity:
        return await self.verifier.averify(token)

    def mint(self, sub: str, aud: str | list[str] | None = "convex", ttl: int | str = 3600,
             claims: dict | None = None) -> str:
        self._follow_sources()
        return self.dev_issuer.mint(sub, aud, ttl, claims, now=self.now_s())

    def discovery(self) -> dict:
        self._follow_sources()
        return self.dev_issuer.discovery()

    def install(self, admin_auth: Any) -> None:
        """Plug into `console.emulator.admin.AdminAuth` (its `token_verifier`/`providers`)."""
        admin_auth.providers = self.provider_documents
        admin_auth.token_verifier = lambda jwt, _payload, _providers: self.verify(jwt)


def _remember(app: Any, auth: EmulatorAuth) -> None:
    if app is None:
        return
    try:
        _AUTH_BY_APP[app] = auth
    except TypeError:
        _AUTH_BY_APP_ID[id(app)] = auth


def auth_for_app(app: Any) -> EmulatorAuth | None:
    try:
        found = _AUTH_BY_APP.get(app)
    except TypeError:
        found = None
    return found or _AUTH_BY_APP_ID.get(id(app))


def auth_for(deployment: Any) -> EmulatorAuth:
    """The deployment's EmulatorAuth (kept in `deployment.extras["auth"]`), made on first use."""
    extras = getattr(deployment, "extras", None)
    if not isinstance(extras, dict):
        extras = deployment.__dict__.setdefault("_emulator_extras", {})
    auth = extras.get("auth")
    if isinstance(auth, EmulatorAuth):
        return auth
    kwargs = {
        "app": getattr(deployment, "app", None),
        "data_dir": getattr(deployment, "data_dir", None),
        "cloud_url_from": lambda: getattr(deployment, "cloud_url", None),
        "app_from": lambda: getattr(deployment, "app", None),
    }
    clock = getattr(deployment, "clock", None)
    auth = EmulatorAuth.for_clock(clock, **kwargs) if clock is not None else EmulatorAuth(**kwargs)
    extras["auth"] = auth
    return auth


def verify_bearer(token: str, deployment: Any) -> Identity:
    """The Bearer path for the servers: Identity.user(...) or ApiError (401, code, message)."""
    return auth_for(deployment).verify(token)


def token_valid_until(token: str, deployment: Any) -> float | None:
    """When a verified Bearer token expires (unix s on the deployment clock), or None.

    For the sync server: a session whose token expires gets `AuthError` with
    `authUpdateAttempted: false` (PROTOCOL §5.4)."""
    return auth_for(deployment).valid_until(token)


def cached_identity(token: str, deployment: Any) -> Identity | None:
    """The fast path: a still-valid token verified before (no I/O, no thread hop), or None."""
    return auth_for(deployment).cached(token)


async def averify_bearer(token: str, deployment: Any) -> Identity:
    """`verify_bearer` for async handlers: JWKS/discovery fetches run off the event loop."""
    return await auth_for(deployment).averify(token)


def list_auth_providers(source: Any, *, creation_time_ms: float | None = None) -> list:
    """What `_system/frontend/listAuthProviders` returns: the `_auth` rows, in order.

    `source`: a Deployment (preferred), an EmulatorAuth, or a loaded app."""
    from console.ids import encode_id

    if isinstance(source, EmulatorAuth):
        auth = source
    elif hasattr(source, "admin_auth"):
        auth = auth_for(source)
    else:
        auth = auth_for_app(source)
    app_or_auth = source
    if auth is not None:
        documents = auth.provider_documents()
    else:
        issuer = default_issuer_url(DEFAULT_CLOUD_URL)
        configs = app_provider_configs(app_or_auth)
        documents = [p.to_document() for p in parse_providers(configs, dev_issuer_url=issuer)]
    if creation_time_ms is None:
        creation_time_ms = auth.created_ms if auth is not None else 0.0
    created = float(creation_time_ms)
    rows = []
    for index, document in enumerate(documents):
        digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).digest()
        internal_id = digest[:14] + index.to_bytes(2, "big")
        rows.append({"_id": encode_id(AUTH_TABLE_NUMBER, internal_id),
                     "_creationTime": created + index, **document})
    return rows
