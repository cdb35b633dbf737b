"""The one exception the data layer raises for bad input."""

from heatlens.errors import HeatlensError


class DataError(HeatlensError):
    """Bad dataset input: the message names the file, row, key or value at fault."""
