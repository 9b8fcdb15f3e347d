"""Auth providers of the demo app, as `convex/auth.config.ts` would declare them.

Like a Clerk set-up (`{domain: CLERK_JWT_ISSUER_DOMAIN, applicationID: "convex"}`), but the
domain is the emulator's built-in development issuer, resolved once the emulator's URL is
known. Mint a token for it with `convex-console token mint --sub user_1 --data-dir DIR`
(or `--url URL` with the admin key in $CONVEX_SELF_HOSTED_ADMIN_KEY).
"""

from console.emulator.auth import DEV_ISSUER

auth_config = {
    "providers": [
        {"domain": DEV_ISSUER, "applicationID": "convex"},
    ],
}
