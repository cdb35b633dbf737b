"""`heatlens-sync <run folder>`: deliver what a job kept in its MLflow outbox while the tracking server was
unreachable (heatlens.tracking.outbox), in order and without duplicates, then the run's final status."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from heatlens.cli.exits import fail
from heatlens.errors import HeatlensError


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="heatlens-sync", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_folder", help="the job's output folder (it holds mlflow-outbox/), or the outbox itself")
    args = parser.parse_args(argv)
    from heatlens.tracking.outbox import sync  # MLflow only once the command line is read

    try:
        print(sync(args.run_folder))
    except HeatlensError as error:
        fail("sync", error)


if __name__ == "__main__":
    main(sys.argv[1:])
