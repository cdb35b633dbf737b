"""The one exception the data layer raises for bad input."""


class DataError(ValueError):
    """Bad dataset input: the message names the file, row, key or value at fault."""
