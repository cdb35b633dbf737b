"""Train, test and explain a model: `python train.py [overrides]` (see docs/get-started.md)."""

from heatlens.cli.train import main

if __name__ == "__main__":
    main()
