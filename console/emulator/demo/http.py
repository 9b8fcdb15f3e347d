"""The demo app's HTTP router: the seed's `convex/http.ts` (Workflow 1) in Python.

Two routes carry deliberate mistakes for the console's CORS audit to find:
- `POST /messages` forgets the CORS headers on its error path (a browser sees a CORS
  failure instead of the 400);
- `POST /legacy/echo` has no OPTIONS route (the browser's preflight gets a 404).
Everything else follows the seed: CORS headers on success, error and OPTIONS responses.
"""

from __future__ import annotations

from console.emulator.errors import ConvexEngineError
from console.emulator.functions import http_action
from console.emulator.http_router import HttpRouter, Response

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS, GET, PUT, DELETE",
    "Access-Control-Allow-Headers": "Content-Type, Authorization",
    "Vary": "Origin",
}

http = HttpRouter()


@http_action
def preflight(ctx, request):
    return Response(None, status=200, headers=CORS_HEADERS)


# --- Workflow 1, step 2: a POST endpoint with CORS on success and on error ---------------------


@http_action
def your_endpoint(ctx, request):
    try:
        body = request.json()
        if not isinstance(body, dict) or not body.get("requiredField"):
            return Response.json({"error": "Missing requiredField"}, status=400, headers=CORS_HEADERS)
        result = ctx.run_mutation("counters:increment", {"name": str(body["requiredField"])})
        return Response.json({"success": True, "data": result}, status=200, headers=CORS_HEADERS)
    except Exception as error:  # noqa: BLE001 - the seed returns every failure as a 500 with CORS
        return Response.json({"error": str(error)}, status=500, headers=CORS_HEADERS)


http.route(path="/your-endpoint", method="POST", handler=your_endpoint)
http.route(path="/your-endpoint", method="OPTIONS", handler=preflight)


# --- step 4: a Bearer-authenticated endpoint ---------------------------------------------------


@http_action
def authenticated_endpoint(ctx, request):
    header = request.headers.get("Authorization") or ""
    if not header.startswith("Bearer "):
        return Response.json({"error": "Missing or invalid Authorization header"}, status=401, headers=CORS_HEADERS)
    try:
        identity = ctx.auth.get_user_identity()
    except ConvexEngineError as error:
        return Response.json({"error": f"Invalid token: {error}"}, status=401, headers=CORS_HEADERS)
    if identity is None:
        return Response.json({"error": "Missing or invalid Authorization header"}, status=401, headers=CORS_HEADERS)
    shown = {k: identity[k] for k in ("subject", "issuer", "tokenIdentifier", "name", "email") if k in identity}
    return Response.json({"success": True, "identity": shown}, status=200, headers=CORS_HEADERS)


http.route(path="/authenticated-endpoint", method="POST", handler=authenticated_endpoint)
http.route(path="/authenticated-endpoint", method="OPTIONS", handler=preflight)


# --- file upload (Workflow 4's HTTP variant) and download by prefix ------------------------------


@http_action
def upload_file(ctx, request):
    data = request.body()
    if not data:
        return Response.json({"error": "Empty body: send the file's bytes"}, status=400, headers=CORS_HEADERS)
    try:
        storage_id = ctx.storage.store(data, request.headers.get("Content-Type"))
    except ConvexEngineError as error:
        if "service is not available" not in str(error):
            raise
        return Response.json({"error": "File storage is not available in this deployment"}, status=503,
                             headers=CORS_HEADERS)
    return Response.json({"storageId": storage_id, "size": len(data)}, status=200, headers=CORS_HEADERS)


http.route(path="/uploadFile", method="POST", handler=upload_file)
http.route(path="/uploadFile", method="OPTIONS", handler=preflight)


@http_action
def get_file(ctx, request):
    storage_id = request.path[len("/files/"):]
    try:
        data = ctx.storage.get(storage_id) if storage_id else None
    except Exception:  # noqa: BLE001 - a malformed id is a 404 here
        data = None
    if data is None:
        return Response.json({"error": "File not found"}, status=404, headers=CORS_HEADERS)
    return Response(data, status=200, headers={**CORS_HEADERS, "Content-Type": "application/octet-stream"})


http.route(path_prefix="/files/", method="GET", handler=get_file)
http.route(path_prefix="/files/", method="OPTIONS", handler=preflight)


# --- a small JSON GET (the benchmark's route) ----------------------------------------------------


@http_action
def health(ctx, request):
    return Response.json({"status": "ok"}, headers=CORS_HEADERS)


http.route(path="/health", method="GET", handler=health)
http.route(path="/health", method="OPTIONS", handler=preflight)


# --- planted mistake 1: the error path has no CORS headers --------------------------------------


@http_action
def post_message(ctx, request):
    try:
        body = request.json()
    except ValueError as error:
        return Response.json({"error": f"Invalid JSON: {error}"}, status=400)  # MISTAKE: no CORS headers
    if not isinstance(body, dict):
        return Response.json({"error": "Expected a JSON object"}, status=400)  # MISTAKE: no CORS headers
    count = ctx.run_mutation("counters:increment", {"name": "messages"})
    return Response.json({"success": True, "count": count, "echo": body.get("body")}, headers=CORS_HEADERS)


http.route(path="/messages", method="POST", handler=post_message)
http.route(path="/messages", method="OPTIONS", handler=preflight)


# --- planted mistake 2: no OPTIONS route, so the preflight is a 404 -------------------------------


@http_action
def legacy_echo(ctx, request):
    try:
        body = request.json()
    except ValueError as error:
        return Response.json({"error": f"Invalid JSON: {error}"}, status=400, headers=CORS_HEADERS)
    return Response.json({"echo": body}, headers=CORS_HEADERS)


http.route(path="/legacy/echo", method="POST", handler=legacy_echo)  # MISTAKE: no OPTIONS route
