"""The one exception the tracking layer raises for bad input."""


class TrackingError(ValueError):
    """MLflow cannot be used as configured: the message names the URI, experiment or run at fault."""
