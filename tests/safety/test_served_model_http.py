"""The served model over real HTTP: `mlflow models serve --env-manager local` of the shared trained run's
model. Each bad request gets a 4xx whose JSON message names the problem and carries no Python stack trace;
16 clients asking at once all get 200 and the probabilities of the network itself (its weights artifact
run by hand: normalisation, the network, the logged temperature, softmax).

The pixels-per-request limit is lowered to 64 x 64 in the server's processes (a `sitecustomize` on their
PYTHONPATH) so that an oversized request is a few kB of JSON instead of the 130 MB the real limit needs.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow.models import Model

from heatlens.models import build_model

sys.path.insert(0, str(Path(__file__).parents[1] / "tracking"))
from tracking_server import free_port, running  # noqa: E402

pytestmark = pytest.mark.slow

LIMIT = 64 * 64
SITECUSTOMIZE = f"import heatlens.tracking.model as model\nmodel.MAX_REQUEST_PIXELS = {LIMIT}\n"


@pytest.fixture(scope="module")
def served(trained_run, tmp_path_factory: pytest.TempPathFactory):
    """(invocations URL, class names, reference function image -> probabilities)."""
    folder = tmp_path_factory.mktemp("served")
    (folder / "site").mkdir()
    (folder / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    port = free_port()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_TRACKING_URI", trained_run.tracking_uri)  # where `models:/<id>` is found
        env.setenv("PYTHONPATH", str(folder / "site"))
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=trained_run.data.tags["model_uri"],
                                                         dst_path=str(folder / "model")))
        reference, classes = reference_of(local)
        command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(local), "--env-manager", "local",
                   "--host", "127.0.0.1", "--port", str(port)]
        with running(command, f"http://127.0.0.1:{port}/ping", folder / "serve.log"):
            yield f"http://127.0.0.1:{port}/invocations", classes, reference


def reference_of(model_dir: Path):
    """The logged network and preprocessing, run by hand on a grey image of the model's own size."""
    config = Model.load(str(model_dir / "MLmodel")).flavors["python_function"]["config"]
    classes = list(config["class_names"])
    net = build_model(config["backbone"], config["head"], len(classes), config["channels"], load_weights=False)
    (weights,) = model_dir.rglob("weights.pt")
    net.load_state_dict(torch.load(weights, weights_only=True))
    net.eval()
    mean, std = torch.tensor(config["mean"])[:, None, None], torch.tensor(config["std"])[:, None, None]
    temperature = float(config.get("temperature") or 1.0)

    def probabilities(image: np.ndarray) -> np.ndarray:
        assert image.shape == (config["image_size"],) * 2 and config["channels"] == 1  # no resize applies
        with torch.no_grad():
            logits = net(((torch.from_numpy(image).float()[None] / 255 - mean) / std)[None])
        return (logits / temperature).softmax(1)[0].numpy()

    return probabilities, classes


def post(url: str, body) -> tuple[int, str]:
    data = (body if isinstance(body, str) else json.dumps(body)).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


BAD = {
    "string": ({"inputs": {"image": "not an image"}}, "image 0: a string"),
    "NaN pixel": ('{"inputs": {"image": [[[1.0, NaN], [3.0, 4.0]]]}}', "image 0: NaN or infinite"),
    "inf pixel": ('{"inputs": {"image": [[[1.0, Infinity], [3.0, 4.0]]]}}', "image 0: NaN or infinite"),
    "wrong rank": ({"inputs": {"image": [[1, 2, 3]]}}, "expected H x W or H x W x 1|3|4 pixels, got shape (3,)"),
    "empty list": ({"inputs": {"image": []}}, "image 0: empty"),
    "oversized": ({"inputs": {"image": [np.zeros((65, 65), int).tolist()]}},
                  f"the request holds {65 * 65} pixels, more than the {LIMIT} one request may hold"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_bad_request_is_a_4xx_naming_the_problem_without_a_stack_trace(served, case) -> None:
    url, _, _ = served
    body, expected = BAD[case]
    status, text = post(url, body)
    assert 400 <= status < 500, (status, text)
    answer = json.loads(text)
    assert expected in answer["message"], answer
    assert "stack_trace" not in answer and "Traceback" not in text and 'File "' not in text


def test_16_clients_at_once_all_get_the_networks_probabilities(served) -> None:
    url, classes, reference = served
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (32, 32), dtype=np.uint8) for _ in range(16)]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda image: post(url, {"inputs": {"image": [image.tolist()]}}), images))
    assert [status for status, _ in answers] == [200] * 16, answers
    got = np.array([[json.loads(text)["predictions"][0][name] for name in classes] for _, text in answers])
    np.testing.assert_allclose(got, np.array([reference(image) for image in images]), atol=1e-5)
