"""Errors shared by the emulator's engine, runtime and servers."""


class ConvexError(Exception):
    """Thrown by function code to return structured data to the client (`errorData`)."""

    def __init__(self, data=None):
        self.data = data
        super().__init__(data if isinstance(data, str) else "ConvexError")


class ConvexEngineError(Exception):
    """A developer-visible error raised inside a function run (bad id, validator, ...)."""


class ApiError(Exception):
    """A non-function HTTP error, served as `{"code": ..., "message": ...}` with `status`."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
