"""The fuzz test corrupts the data tests' own fixtures: their writers (tests/data/data_writers.py) are imported."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
