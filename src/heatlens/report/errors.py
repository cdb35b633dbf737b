"""The one exception the comparison report raises for bad input."""

from heatlens.errors import HeatlensError


class CompareError(HeatlensError):
    """A comparison cannot be made as asked (unknown run, different test sets, missing arrays...)."""
