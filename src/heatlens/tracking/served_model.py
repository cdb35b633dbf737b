"""Stored with every heatlens MLflow Model ("models from code"): MLflow runs it to build the model."""

from mlflow.models import set_model

from heatlens.tracking.model import HeatlensClassifier

set_model(HeatlensClassifier())
