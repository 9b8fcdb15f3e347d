"""The function spec (`_system/cli/modules:apiSpec`, PROTOCOL §3.5) and the dashboard's
module list (`_system/frontend/modules:list`), from the app's registered functions."""

from __future__ import annotations

from console.emulator.runtime import UDF_TYPE_NAMES

ANY = {"type": "any"}


def http_route_specs(deployment) -> list[dict]:
    """`{functionType:"HttpAction", method, path}` per route; filled by the HTTP actions part."""
    return [
        {"functionType": "HttpAction", "method": route["method"], "path": route["path"]}
        for route in deployment.http_routes()
    ]


def _user_functions(app) -> list:
    return sorted(
        (f for f in app.functions.values() if not f.is_system),
        key=lambda f: (f.module, f.lineno, f.name),
    )


def api_spec(deployment) -> list[dict]:
    result: list[dict] = []
    for function in _user_functions(deployment.app):
        result.append(
            {
                "identifier": function.path,
                "functionType": UDF_TYPE_NAMES[function.udf_type],
                "visibility": {"kind": function.visibility},
                "args": function.args if function.args is not None else ANY,
                "returns": function.returns if function.returns is not None else ANY,
            }
        )
    return result + http_route_specs(deployment)


def module_list(deployment) -> list:
    modules: dict[str, list[dict]] = {}
    for function in _user_functions(deployment.app):
        entry = {
            "name": function.name,
            "udfType": UDF_TYPE_NAMES[function.udf_type],
            "visibility": {"kind": function.visibility},
        }
        if function.lineno:
            entry["lineno"] = float(function.lineno)
        modules.setdefault(function.module, []).append(entry)
    routes = deployment.http_routes()
    if routes:
        http = modules.setdefault("http.js", [])
        for route in routes:
            http.append(
                {
                    "name": f"{route['method']} {route['path']}",
                    "udfType": "HttpAction",
                    "visibility": {"kind": "public"},
                }
            )
    package_id = deployment.app_module
    return [[path, {"functions": functions, "sourcePackageId": package_id}] for path, functions in modules.items()]
