"""The one error type that services raise when they refuse something.

A refusal carries a stable machine-readable `code`, a human `message` and, when the
input was at fault, `fields`. The API turns it into a 4xx with that shape; the admin
shows the message to ops staff.
"""


class ApplicationError(Exception):
    status_code = 400

    def __init__(self, code: str, message: str, *, fields: dict | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields or {}
        if status is not None:
            self.status_code = status

    def __str__(self) -> str:
        return self.message


class ConflictError(ApplicationError):
    """The request is well-formed but the object's state does not allow it."""

    status_code = 409
