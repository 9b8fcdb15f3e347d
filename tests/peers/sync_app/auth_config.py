from console.emulator.auth import DEV_ISSUER

auth_config = {"providers": [{"domain": DEV_ISSUER, "applicationID": "convex"}]}
