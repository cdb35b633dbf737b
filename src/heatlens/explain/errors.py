"""The one exception type of the explanation library."""

from heatlens.errors import HeatlensError


class ExplainError(HeatlensError):
    """Bad input to an explanation function; the message names the argument and value at fault."""
