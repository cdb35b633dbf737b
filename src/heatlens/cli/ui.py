"""`heatlens-ui [--backend-store-uri URI] [--host H] [--port P]`: the MLflow UI of heatlens' runs.

`mlflow server --app-name heatlens` on the store heatlens writes to (`logger.tracking_uri`'s default:
`$MLFLOW_TRACKING_URI`, else `<home>/mlruns/mlflow.db`), so every experiment link opens the runs
table (heatlens.tracking.ui says why plain `mlflow ui` opens the GenAI view).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

from heatlens.cli.exits import fail
from heatlens.errors import HeatlensError

APP_NAME = "heatlens"
JOB_EXECUTION = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"


class UiError(HeatlensError):
    """A store the UI cannot serve."""


def server_command(store: str, host: str, port: int) -> list[str]:
    """The `mlflow server` command line; one worker: a UI for one person, not a team's server."""
    if store.startswith(("http://", "https://")):
        raise UiError(f"--backend-store-uri={store} is a tracking server: open it in a browser (start it with "
                      f"`mlflow server --app-name {APP_NAME}` to land on the runs table)")
    return [sys.executable, "-m", "mlflow", "server", "--app-name", APP_NAME, "--backend-store-uri", store,
            "--host", host, "--port", str(port), "--workers", "1"]


def server_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` with MLflow's server job runner off unless the user set it: the runner (GenAI scorers,
    prompt optimisation) starts 8 more processes that each import MLflow (measured: 26 s of CPU in the
    server's first 30 s with it, 6 s without) and heatlens runs no server jobs."""
    return {JOB_EXECUTION: "false", **environ}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="heatlens-ui", description=__doc__.splitlines()[0])
    parser.add_argument("--backend-store-uri", default=None,
                        help="the store to show (default: where `python train.py` logs)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    from heatlens.tracking import resolve_tracking_uri  # MLflow: only once the arguments are parsed

    try:
        command = server_command(resolve_tracking_uri(args.backend_store_uri), args.host, args.port)
    except HeatlensError as error:
        fail("ui", error)
    print(f"MLflow UI of {command[command.index('--backend-store-uri') + 1]}: http://{args.host}:{args.port}/",
          flush=True)
    # This process becomes the server: Ctrl-C and kill reach MLflow directly.
    os.execve(command[0], command, server_environment(os.environ))


if __name__ == "__main__":
    main()
