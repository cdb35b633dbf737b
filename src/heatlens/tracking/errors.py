"""The exceptions the tracking layer raises for bad input."""

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from heatlens.errors import HeatlensError


class TrackingError(HeatlensError):
    """MLflow cannot be used as configured: the message names the URI, experiment or run at fault."""


class ModelInputError(HeatlensError, MlflowException):
    """Input a logged heatlens model cannot predict on: the message names the image and what is wrong.

    Also an MlflowException with INVALID_PARAMETER_VALUE: `mlflow models serve` answers it with HTTP 400
    and this message, without the stack trace it attaches to any other exception."""

    def __init__(self, message: str) -> None:
        MlflowException.__init__(self, message, error_code=INVALID_PARAMETER_VALUE)
