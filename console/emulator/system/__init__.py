"""System UDFs (`_system/cli/*`, `_system/frontend/*`): ordinary registered functions.

Each builder returns `{convex module path: {export name: ConvexFunction}}`; the functions
close over the deployment (for URLs, the app's spec and the table mapping) and are run by
the same runner as user functions, which lets only admin and system identities call them.
"""

from __future__ import annotations


def install(deployment) -> None:
    from console.emulator.system import cli, environment, file_storage, frontend, scheduling

    for builder in (cli.modules, frontend.modules, scheduling.modules, file_storage.modules, environment.modules):
        for module_path, functions in builder(deployment).items():
            for name, function in functions.items():
                deployment.app.register(module_path, name, function)
