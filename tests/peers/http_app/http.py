import threading

from console.emulator.errors import ConvexError
from console.emulator.functions import http_action
from console.emulator.http_router import HttpRouter, Response

http = HttpRouter()
release = threading.Event()  # the slow route waits on it


@http_action
def count_chunks(ctx, request):
    sizes = [len(chunk) for chunk in request.stream()]
    return Response.json({"chunks": len(sizes), "bytes": sum(sizes)})


@http_action
def echo(ctx, request):
    return Response(request.body(), headers={"Content-Type": request.headers.get("content-type", "application/octet-stream"),
                                              "X-Method": request.method, "X-Url": request.url})


@http_action
def boom(ctx, request):
    print("about to fail")
    raise RuntimeError("boom")


@http_action
def convex_error(ctx, request):
    raise ConvexError({"code": "NOPE"})


@http_action
def wrong_return(ctx, request):
    return {"not": "a response"}


@http_action
def slow(ctx, request):
    release.wait(10)
    return Response("done")


@http_action
def big(ctx, request):
    size = int(request.query.get("size", "1000"))
    return Response(b"\xff" * size, headers={"Content-Type": "application/octet-stream"})


@http_action
def whoami(ctx, request):
    try:
        return Response.json({"identity": ctx.auth.get_user_identity()})
    except Exception as error:  # noqa: BLE001
        return Response.json({"error": str(error)}, status=401)


@http_action
def env(ctx, request):
    return Response.json({"value": ctx.env.get(request.query.get("name", ""))})


http.route(path="/count", method="POST", handler=count_chunks)
http.route(path="/echo", method="POST", handler=echo)
http.route(path="/echo", method="PUT", handler=echo)
http.route(path="/echo", method="GET", handler=echo)
http.route(path="/boom", method="GET", handler=boom)
http.route(path="/convex-error", method="GET", handler=convex_error)
http.route(path="/wrong", method="GET", handler=wrong_return)
http.route(path="/slow", method="GET", handler=slow)
http.route(path="/big", method="GET", handler=big)
http.route(path="/whoami", method="GET", handler=whoami)
http.route(path="/env", method="GET", handler=env)
# The longer prefix first: Convex refuses a prefix shadowed by one registered before it.
http.route(path_prefix="/files/deep/", method="GET", handler=boom)
http.route(path_prefix="/files/", method="GET", handler=echo)


@http_action
def thread_name(ctx, request):
    """Which thread ran the handler (self-contained: may move to the event loop)."""
    return Response(threading.current_thread().name)


@http_action
def thread_name_after_query(ctx, request):
    """The same after a ctx.run_query: it reaches into the deployment, so it stays on the threads."""
    ctx.run_query("env:read", {"name": "X"})
    return Response(threading.current_thread().name)


http.route(path="/thread", method="GET", handler=thread_name)
http.route(path="/thread", method="POST", handler=thread_name)
http.route(path="/thread-query", method="GET", handler=thread_name_after_query)


@http_action
def moved(ctx, request):
    return Response(None, status=302, headers={"Location": "/echo"})


http.route(path="/moved", method="GET", handler=moved)
