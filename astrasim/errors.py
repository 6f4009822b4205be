"""User-facing errors: one line naming the field and the fix; the CLI turns them into exit code 2."""


class UserError(Exception):
    """Bad input from a user (scenario, option, missing profile). Message = one line, field + fix."""

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)
