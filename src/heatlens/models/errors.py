"""The one exception the model layer raises for bad configuration."""

from heatlens.errors import HeatlensError


class ModelConfigError(HeatlensError):
    """Bad model configuration: the message names the key, value or file at fault."""
