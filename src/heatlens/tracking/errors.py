"""The exceptions the tracking layer raises for bad input."""


class TrackingError(ValueError):
    """MLflow cannot be used as configured: the message names the URI, experiment or run at fault."""


class ModelInputError(ValueError):
    """Input a logged heatlens model cannot predict on: the message names the image and what is wrong."""
