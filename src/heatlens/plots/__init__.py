"""Matplotlib figures from plain arrays (explanations, training, comparison, a run's summary), built without pyplot.
May import matplotlib, numpy, heatlens.explain and top-level helpers; never MLflow, Lightning, callbacks or tracking.
"""
