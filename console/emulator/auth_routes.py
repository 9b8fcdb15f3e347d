"""HTTP routes of the built-in development issuer (on the cloud port).

- GET  /emulator-auth/.well-known/openid-configuration   OIDC discovery document
- GET  /emulator-auth/.well-known/jwks.json              its JWK set (RS256, with `kid`)
- POST /api/emulator/mint_token                          admin only: mint a token
       body {"sub", "aud"?: str|list|null (default "convex"), "ttl"?: "1h"|seconds, "claims"?: {}}
       -> {"token", "issuer", "kid", "expiresAt" (unix seconds)}
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from console.emulator.auth import DEV_ISSUER_PATH, EmulatorAuth, auth_for, parse_ttl
from console.emulator.errors import ApiError

log = logging.getLogger(__name__)

MINT_PATH = "/api/emulator/mint_token"
MAX_MINT_BODY = 64 * 1024


def _error(error: ApiError) -> JSONResponse:
    return JSONResponse({"code": error.code, "message": error.message}, status_code=error.status)


def _find_admin_auth(deployment: Any) -> Any:
    from console.emulator.admin import AdminAuth

    for name in ("admin_auth", "admin", "auth_admin"):
        candidate = getattr(deployment, name, None)
        if isinstance(candidate, AdminAuth):
            return candidate
    for candidate in vars(deployment).values():
        if isinstance(candidate, AdminAuth):
            return candidate
    raise ApiError(500, "InternalServerError", "This deployment has no admin key")


def _deployment_admin_check(deployment: Any) -> Callable[[Request], None]:
    def check(request: Request) -> None:
        admin_auth = _find_admin_auth(deployment)
        identity = admin_auth.authenticate(request.headers.get("authorization"), request.query_params)
        admin_auth.require_admin(identity)

    return check


async def _read_json(request: Request) -> dict:
    body = await request.body()
    if len(body) > MAX_MINT_BODY:
        raise ApiError(400, "BadJsonBody", "Request body too large")
    try:
        data = json.loads(body or b"{}")
    except ValueError as error:
        raise ApiError(400, "BadJsonBody", f"Failed to parse JSON body: {error}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "BadJsonBody", "The body must be a JSON object")
    return data


def _mint_args(data: dict) -> tuple[str, Any, int, dict]:
    sub = data.get("sub", data.get("subject"))
    if not isinstance(sub, str) or not sub:
        raise ApiError(400, "InvalidMintRequest", "`sub` must be a non-empty string")
    aud = data.get("aud", data.get("audience", "convex"))
    if aud is not None and not isinstance(aud, str) and not (
        isinstance(aud, list) and all(isinstance(item, str) for item in aud)
    ):
        raise ApiError(400, "InvalidMintRequest", "`aud` must be a string, a list of strings or null")
    claims = data.get("claims") or {}
    if not isinstance(claims, dict):
        raise ApiError(400, "InvalidMintRequest", "`claims` must be an object")
    try:
        ttl = parse_ttl(data.get("ttl", data.get("ttlSeconds", 3600)))
    except ValueError as error:
        raise ApiError(400, "InvalidMintRequest", str(error)) from None
    return sub, aud, ttl, claims


def build_routes(get_auth: Callable[[], EmulatorAuth],
                 require_admin: Callable[[Request], None]) -> list[Route]:
    """The routes, given how to reach the deployment's auth and how to check an admin key."""

    async def discovery(_request: Request) -> JSONResponse:
        return JSONResponse(get_auth().discovery())

    async def jwks(_request: Request) -> JSONResponse:
        return JSONResponse(get_auth().dev_issuer.jwks(), headers={"Cache-Control": "max-age=300"})

    async def mint(request: Request) -> JSONResponse:
        try:
            require_admin(request)
            sub, aud, ttl, claims = _mint_args(await _read_json(request))
            auth = get_auth()
            token = auth.mint(sub, aud, ttl, claims)
        except ApiError as error:
            return _error(error)
        except ValueError as error:
            return _error(ApiError(400, "InvalidMintRequest", str(error)))
        expires_at = json.loads(_payload_json(token)).get("exp")
        return JSONResponse({
            "token": token,
            "issuer": auth.dev_issuer.issuer_url,
            "kid": auth.dev_issuer.kid,
            "expiresAt": expires_at,
        })

    return [
        Route(DEV_ISSUER_PATH + "/.well-known/openid-configuration", discovery, methods=["GET"]),
        Route(DEV_ISSUER_PATH + "/.well-known/jwks.json", jwks, methods=["GET"]),
        Route(MINT_PATH, mint, methods=["POST"]),
    ]


def _payload_json(token: str) -> bytes:
    import base64

    segment = token.split(".")[1]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def routes(deployment: Any) -> list[Route]:
    """The routes for a server.py Deployment (its admin key guards the mint endpoint).

    Called when the cloud app is built, i.e. once the cloud URL is known: the issuer URL is
    resolved now and written to the data dir for `convex-console token mint --data-dir`.
    """
    auth = auth_for(deployment)
    auth.refresh()
    try:
        auth.providers()  # a bad auth config shows at start-up, as a push would fail on Convex
    except ApiError as error:
        log.warning("auth_config: %s (Bearer tokens will be refused)", error.message)
    return build_routes(lambda: auth_for(deployment), _deployment_admin_check(deployment))
