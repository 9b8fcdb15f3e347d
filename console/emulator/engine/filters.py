"""Filter expressions in Convex's JSON form (QUERIES §2.3), compiled to Python closures.

`compile_expression(json)` returns `fn(doc) -> value`; `compile_filter(json)` returns
`fn(doc) -> bool` that raises when the result is not a boolean, as the backend does.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from console import values
from console.emulator.errors import ConvexEngineError
from console.values import INT64_MAX, INT64_MIN, UNDEFINED, sort_key

from .keys import get_path
from .validate import display_value

Expr = Callable[[dict], Any]


class EvalError(ConvexEngineError):
    pass


def _type_name(value: Any) -> str:
    """The backend's type names in evaluation errors."""
    if value is UNDEFINED:
        return "undefined"
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    return {str: "String", bytes: "Bytes", list: "Array", dict: "Object"}[type(value)]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked(result: int, verb: str, left: int, right: int) -> int:
    if not INT64_MIN <= result <= INT64_MAX:
        raise EvalError(f"Cannot {verb} {left} and {right}: the result is out of range for Int64")
    return result


def _int_div(left: int, right: int) -> int:
    if right == 0:
        raise EvalError(f"Cannot divide {left} by zero")
    quotient = abs(left) // abs(right)
    return _checked(quotient if (left >= 0) == (right >= 0) else -quotient, "divide", left, right)


def _int_mod(left: int, right: int) -> int:
    if right == 0:
        raise EvalError(f"Cannot mod {left} by zero")
    remainder = abs(left) % abs(right)  # truncated division: the sign follows the dividend
    return remainder if left >= 0 else -remainder


def _float_div(left: float, right: float) -> float:
    if right == 0.0:
        if left == 0.0 or math.isnan(left):
            return math.nan
        return math.copysign(math.inf, left) * math.copysign(1.0, right)
    return left / right


def _float_mod(left: float, right: float) -> float:
    if right == 0.0 or math.isinf(left) or math.isnan(left) or math.isnan(right):
        return math.nan
    return math.fmod(left, right)


_ARITHMETIC = {
    "$add": ("add", lambda l, r: _checked(l + r, "add", l, r), lambda l, r: l + r),
    "$sub": ("subtract", lambda l, r: _checked(l - r, "subtract", l, r), lambda l, r: l - r),
    "$mul": ("multiply", lambda l, r: _checked(l * r, "multiply", l, r), lambda l, r: l * r),
    "$div": ("divide", _int_div, _float_div),
    "$mod": ("mod", _int_mod, _float_mod),
}

_COMPARE = {
    "$eq": lambda a, b: a == b,
    "$neq": lambda a, b: a != b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
}


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise EvalError(f"Cannot use value {display_value(value)} (type {_type_name(value)}) as a Boolean")
    return value


def _pair(op: str, args: Any) -> tuple[Expr, Expr]:
    if not isinstance(args, list) or len(args) != 2:
        raise ConvexEngineError(f"Invalid filter expression: {op} expects an array of two expressions")
    return compile_expression(args[0]), compile_expression(args[1])


def _compile_arithmetic(op: str, args: Any) -> Expr:
    left, right = _pair(op, args)
    verb, on_ints, on_floats = _ARITHMETIC[op]

    def run(doc):
        l, r = left(doc), right(doc)
        if _is_int(l) and _is_int(r):
            return on_ints(l, r)
        if isinstance(l, float) and isinstance(r, float):
            return on_floats(l, r)
        raise EvalError(
            f"Cannot {verb} {display_value(l)} (type {_type_name(l)}) and {display_value(r)} (type {_type_name(r)})"
        )

    return run


def _compile_compare(op: str, args: Any) -> Expr:
    left, right = _pair(op, args)
    test = _COMPARE[op]
    return lambda doc: test(sort_key(left(doc)), sort_key(right(doc)))


def _compile_neg(arg: Any) -> Expr:
    inner = compile_expression(arg)

    def run(doc):
        x = inner(doc)
        if _is_int(x):
            if x == INT64_MIN:
                raise EvalError(f"Cannot negate {x}: the result is out of range for Int64")
            return -x
        if isinstance(x, float):
            return -x
        raise EvalError(f"Cannot negate {display_value(x)} (type {_type_name(x)})")

    return run


def _compile_logic(op: str, args: Any) -> Expr:
    if not isinstance(args, list):
        raise ConvexEngineError(f"Invalid filter expression: {op} expects an array of expressions")
    parts = [compile_expression(a) for a in args]
    if op == "$and":
        return lambda doc: all(_boolean(p(doc)) for p in parts)
    return lambda doc: any(_boolean(p(doc)) for p in parts)


def compile_expression(expr: Any) -> Expr:
    if not isinstance(expr, dict) or len(expr) != 1:
        raise ConvexEngineError(f"Invalid filter expression: {expr!r}")
    ((op, arg),) = expr.items()
    if op == "$field":
        if not isinstance(arg, str):
            raise ConvexEngineError(f"Invalid filter expression: $field must be a string, got {arg!r}")
        return lambda doc: get_path(doc, arg)
    if op == "$literal":
        try:
            constant = values.decode(arg, allow_undefined=True)
        except ValueError as error:
            raise ConvexEngineError(f"Invalid filter literal: {error}") from None
        return lambda doc: constant
    if op in _COMPARE:
        return _compile_compare(op, arg)
    if op in _ARITHMETIC:
        return _compile_arithmetic(op, arg)
    if op == "$neg":
        return _compile_neg(arg)
    if op in ("$and", "$or"):
        return _compile_logic(op, arg)
    if op == "$not":
        inner = compile_expression(arg)
        return lambda doc: not _boolean(inner(doc))
    raise ConvexEngineError(f"Invalid filter expression: unknown operator {op!r}")


def compile_filter(expr: Any) -> Callable[[dict], bool]:
    run = compile_expression(expr)
    return lambda doc: _boolean(run(doc))
