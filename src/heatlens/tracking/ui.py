"""The MLflow UI as heatlens serves it: MLflow's own server app, whose page opens on the runs table.

MLflow 3's UI chooses an experiment's landing view in the browser, not from the store: the page's
`?workflowType=` parameter, else the browser's localStorage key `mlflow.workflowType_v1`, else the
GenAI view (traces overview). The experiment tag `mlflow.experimentKind` does not decide it. So this
app adds one inline script to the page that stores "machine_learning" as that default when the
browser has no choice yet (a user who switches to GenAI keeps that choice): the home page's
experiment link, an experiment link without `?workflowType=` and a run link all open the runs.

`mlflow server --app-name heatlens` runs it (entry point `mlflow.app`), `heatlens-ui` starts that.
"""

from __future__ import annotations

import json

from flask import Response, request
from mlflow.server import app as flask_app
from mlflow.server.fastapi_app import app as fastapi_app

# The key and value the UI bundle reads (useLocalStorage({key: "mlflow.workflowType", version: 1})).
WORKFLOW_TYPE_KEY = "mlflow.workflowType_v1"
MACHINE_LEARNING = "machine_learning"
LANDING_SCRIPT = (
    f"<script>try{{if(!localStorage.getItem({json.dumps(WORKFLOW_TYPE_KEY)}))"
    f"localStorage.setItem({json.dumps(WORKFLOW_TYPE_KEY)},{json.dumps(json.dumps(MACHINE_LEARNING))})}}"
    f"catch(e){{}}</script>"
)


def lead_with_runs(html: str) -> str:
    """The UI page with the landing script first in <head>, before the bundle reads the key."""
    return html.replace("<head>", "<head>" + LANDING_SCRIPT, 1)


@flask_app.after_request
def _landing_default(response: Response) -> Response:
    if request.endpoint == "serve" and response.status_code == 200 and response.mimetype == "text/html":
        response.direct_passthrough = False
        response.set_data(lead_with_runs(response.get_data(as_text=True)))
        # The file's own validators would let a browser keep a page without the script.
        for header in ("ETag", "Last-Modified"):
            response.headers.pop(header, None)
        response.headers["Cache-Control"] = "no-cache"
    return response


app = fastapi_app
