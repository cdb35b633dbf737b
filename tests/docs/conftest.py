"""Helpers of the docs tests: the generators under docs/_gen and the page runner are importable."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "_gen"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
