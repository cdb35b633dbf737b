"""`python -m heatlens.bench`: speed ratios measured side by side, results merged into bench/results.json.
May import every heatlens package (it benchmarks them) and the reference libraries it races against.
"""

