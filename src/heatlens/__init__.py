"""heatlens: train medical-image classifiers and measure what they look at."""

__version__ = "0.1.0"
