"""Loading an app: a Python package whose submodules are Convex modules (internals §4).

`app/posts.py` is the module `posts.js`; `app/dir/mod.py` is `dir/mod.js`; a registered
function `list` in it is `posts.js:list`. `schema` comes from `app/schema.py`, `http` from
`app/http.py`, `crons` from `app/crons.py`, `auth_config` from `app/auth_config.py`.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import pkgutil
import re
import types
from dataclasses import dataclass

from console.emulator.errors import ApiError
from console.emulator.functions import ConvexFunction

MAX_PATH_COMPONENT = 64
_PATH_COMPONENT = re.compile(r"^[A-Za-z0-9_.]+$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# ---------------------------------------------------------------------------
# Function paths (PROTOCOL §1.5)


def _bad_path(path: str, reason: str) -> ApiError:
    return ApiError(400, "BadConvexFunctionIdentifier", f"{path} is not a valid path to a Convex function. {reason}")


def _check_identifier(name: str) -> str | None:
    if not name:
        return "Identifier cannot be empty"
    if not (name[0].isascii() and (name[0].isalpha() or name[0] == "_")):
        return (
            f"Invalid first character {name[0]!r} in {name}: Identifiers must start with an "
            "alphabetic character or underscore"
        )
    for char in name:
        if not (char.isascii() and (char.isalnum() or char == "_")):
            return (
                f"Identifier {name} has invalid character {char!r}: Identifiers can only contain "
                "alphanumeric characters or underscores"
            )
    if len(name) > MAX_PATH_COMPONENT:
        return f"Identifier is too long ({len(name)} > maximum {MAX_PATH_COMPONENT})"
    if set(name) == {"_"}:
        return f"Identifier {name} cannot have exclusively underscores"
    return None


def _check_component(component: str) -> str | None:
    if len(component) > MAX_PATH_COMPONENT:
        return (
            f"Path component is too long ({len(component)} > maximum {MAX_PATH_COMPONENT}): "
            f"{component[:MAX_PATH_COMPONENT]}..."
        )
    if not _PATH_COMPONENT.match(component):
        return f"Path component {component} can only contain alphanumeric characters, underscores, or periods."
    if not any(char.isalnum() for char in component):
        return f"Path component {component} must have at least one alphanumeric character."
    return None


def _canonical_module(path: str, module: str) -> str:
    if module.startswith("/"):
        raise _bad_path(path, f"Module paths must be relative ({module} is absolute).")
    components = [c for c in module.split("/") if c != ""]
    if not components:
        raise _bad_path(path, "Module paths must be nonempty.")
    for component in components:
        if component in (".", ".."):
            raise _bad_path(path, f"Invalid path component {component!r} in {module}.")
    last = components[-1]
    stem, dot, ext = last.rpartition(".")
    has_extension = bool(dot) and bool(stem)  # ".hidden" has no extension
    if has_extension and ext != "js":
        raise _bad_path(path, f"Module path ({module}) has an extension that isn't 'js'.")
    if not has_extension:
        components[-1] = last + ".js"
    for component in components:
        problem = _check_component(component)
        if problem:
            raise _bad_path(path, problem)
    return "/".join(components)


def canonicalize_path(path: str) -> str:
    """`posts:list` -> `posts.js:list`; `mod` -> `mod.js:default`. ApiError(400) when invalid."""
    if not isinstance(path, str):
        raise ApiError(400, "BadConvexFunctionIdentifier", f"Function path must be a string, got {path!r}")
    return _canonicalize(path)


@functools.lru_cache(maxsize=4096)
def _canonicalize(path: str) -> str:
    module, sep, function = path.rpartition(":")
    if not sep:
        module, function = path, "default"
    else:
        problem = _check_identifier(function)
        if problem:
            raise _bad_path(path, problem)
    return f"{_canonical_module(path, module)}:{function}"


def strip_path(canonical: str) -> str:
    """`posts.js:list` -> `posts:list`; `mod.js:default` -> `mod` (how logs name functions)."""
    module, _, function = canonical.rpartition(":")
    if module.endswith(".js"):
        module = module[:-3]
    return module if function == "default" else f"{module}:{function}"


def is_system_path(canonical: str) -> bool:
    return canonical.split("/", 1)[0] == "_system"


# ---------------------------------------------------------------------------
# The app


@dataclass
class RegisteredFunction:
    path: str  # canonical: "posts.js:list"
    module: str  # "posts.js"
    name: str  # "list"
    udf_type: str  # "query" | "mutation" | "action"
    visibility: str  # "public" | "internal"
    args: dict | None  # ValidatorJSON, None when no validator was given
    returns: dict | None
    handler: object  # the callable (ctx, args) -> value
    function: ConvexFunction
    lineno: int = 0
    source_file: str | None = None

    @property
    def identifier(self) -> str:
        return strip_path(self.path)

    @property
    def is_system(self) -> bool:
        return is_system_path(self.path)


class App:
    def __init__(self, name: str = "app"):
        self.name = name
        self.functions: dict[str, RegisteredFunction] = {}
        self.schema = None
        self.http = None
        self.crons = None
        self.auth_config = None
        self.source_dirs: list[str] = []

    # -- registration
    def register(self, module_path: str, name: str, function: ConvexFunction, source_file: str | None = None) -> RegisteredFunction:
        module = _canonical_module(module_path, module_path)
        path = f"{module}:{name}"
        code = getattr(function.handler, "__code__", None)
        registered = RegisteredFunction(
            path=path,
            module=module,
            name=name,
            udf_type=function.udf_type,
            visibility=function.visibility,
            args=function.args_json,
            returns=function.returns_json,
            handler=function.handler,
            function=function,
            lineno=code.co_firstlineno if code else 0,
            source_file=source_file or (code.co_filename if code else None),
        )
        if function.path is None:
            function.path = path
        self.functions[path] = registered
        return registered

    def add_module(self, path_prefix: str, python_module: types.ModuleType) -> list[RegisteredFunction]:
        """Register the functions defined in `python_module` as module `path_prefix` (`.js` optional)."""
        found = []
        for name, value in vars(python_module).items():
            if not isinstance(value, ConvexFunction) or name.startswith("__"):
                continue
            if getattr(value.handler, "__module__", python_module.__name__) != python_module.__name__:
                continue  # imported from elsewhere, registered where it is defined
            found.append(self.register(path_prefix, name, value, getattr(python_module, "__file__", None)))
        return found

    def add_package(self, path_prefix: str, package: types.ModuleType) -> list[RegisteredFunction]:
        """Walk `package` recursively; `package.sub.mod` becomes `<path_prefix>/sub/mod.js`."""
        found = []
        for module, relative in _walk(package):
            prefix = f"{path_prefix}/{relative}" if path_prefix else relative
            found.extend(self.add_module(prefix, module))
        return found

    # -- lookup
    def resolve(self, path: str) -> RegisteredFunction | None:
        """The function at `path` (any accepted spelling), or None. ApiError(400) if malformed."""
        return self.functions.get(canonicalize_path(path))

    def modules(self) -> dict[str, list[RegisteredFunction]]:
        """module path -> its functions, sorted (for `_system/frontend/modules:list`)."""
        result: dict[str, list[RegisteredFunction]] = {}
        for function in sorted(self.functions.values(), key=lambda f: (f.module, f.lineno, f.name)):
            result.setdefault(function.module, []).append(function)
        return result

    def user_functions(self) -> list[RegisteredFunction]:
        return [f for f in self.functions.values() if not f.is_system]


def _walk(package: types.ModuleType):
    """(module, "dir/mod") for every submodule whose path has no component starting with `_`."""
    if not hasattr(package, "__path__"):
        yield package, package.__name__.rsplit(".", 1)[-1]
        return
    prefix = package.__name__ + "."
    for info in pkgutil.walk_packages(package.__path__, prefix, onerror=_raise):
        relative = info.name[len(prefix):]
        if any(part.startswith("_") for part in relative.split(".")):
            continue
        module = importlib.import_module(info.name)
        if info.ispkg:
            continue  # a package's own __init__ is not a module; its children are
        yield module, relative.replace(".", "/")


def _raise(name: str) -> None:
    raise ImportError(f"Could not import app module {name}")


def _optional_attribute(package_name: str, module: str, attribute: str):
    try:
        loaded = importlib.import_module(f"{package_name}.{module}")
    except ModuleNotFoundError as error:
        if error.name == f"{package_name}.{module}":
            return None
        raise
    return getattr(loaded, attribute, None)


def load_app(module_name: str) -> App:
    """Import the app package `module_name` and register everything it defines."""
    package = importlib.import_module(module_name)
    app = App(module_name)
    if hasattr(package, "__path__"):
        app.source_dirs = [os.path.abspath(p) for p in package.__path__]
        app.add_package("", package)
        app.schema = _optional_attribute(module_name, "schema", "schema")
        app.http = _optional_attribute(module_name, "http", "http")
        app.crons = _optional_attribute(module_name, "crons", "crons")
        app.auth_config = _optional_attribute(module_name, "auth_config", "auth_config")
    else:
        app.source_dirs = [os.path.dirname(os.path.abspath(package.__file__))]
        app.add_module(module_name.rsplit(".", 1)[-1], package)
    logger = logging.getLogger(module_name)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.DEBUG)  # INFO/DEBUG inside functions become log lines
    return app
