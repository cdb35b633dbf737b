"""Train, test and explain a model: `python train.py [overrides]` (see README)."""

from heatlens.cli.train import main

if __name__ == "__main__":
    main()
