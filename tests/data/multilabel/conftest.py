"""The multi-label reader tests write their images with the data tests' writers (tests/data/data_writers.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
