"""The one exception the comparison report raises for bad input."""


class CompareError(ValueError):
    """A comparison cannot be made as asked (unknown run, different test sets, missing arrays...)."""
