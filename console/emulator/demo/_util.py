"""Helpers shared by the demo modules (a `_` module: not a Convex module)."""

import time


def now_ms() -> float:
    return float(int(time.time() * 1000))
