"""The one exception the model layer raises for bad configuration."""


class ModelConfigError(ValueError):
    """Bad model configuration: the message names the key, value or file at fault."""
