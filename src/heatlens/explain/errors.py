"""The one exception type of the explanation library."""


class ExplainError(ValueError):
    """Bad input to an explanation function; the message names the argument and value at fault."""
