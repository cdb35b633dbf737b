"""The served model refuses what it cannot handle and says why: each bad request gets a 4xx whose message
names the problem and no stack trace; 16 concurrent good requests are all answered correctly.

Requests go through `mlflow.pyfunc.scoring_server.invocations`, the function `mlflow models serve` runs
for POST /invocations, and an MlflowException becomes the response exactly as the server's handler
(`_async_catch_mlflow_exception`) makes it: status `get_http_status_code()`, body `serialize_as_json()`."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import mlflow
import numpy as np
import pytest
import torch
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import scoring_server

from heatlens.models import build_model
from heatlens.tracking.model import MAX_REQUEST_PIXELS, MODEL_CODE, model_signature, pip_requirements

CLASSES = ["A", "B", "C"]
CONFIG = {"class_names": CLASSES, "image_size": 32, "channels": 1, "resize": "pad", "mean": [0.4], "std": [0.3],
          "backbone": {"name": "simple_cnn", "pretrained": False, "width": 4}, "head": {"name": "gap_linear"},
          "temperature": None, "thresholds": {}}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(pyfunc model, the network it serves): a heatlens model saved as `log_selected_model` logs it."""
    torch.manual_seed(0)
    net = build_model(CONFIG["backbone"], CONFIG["head"], len(CLASSES), 1).eval()
    folder = tmp_path_factory.mktemp("served")
    torch.save(net.state_dict(), folder / "weights.pt")
    mlflow.pyfunc.save_model(str(folder / "model"), python_model=str(MODEL_CODE),
                             artifacts={"weights": str(folder / "weights.pt")}, model_config=CONFIG,
                             signature=model_signature(CLASSES), pip_requirements=pip_requirements())
    return mlflow.pyfunc.load_model(str(folder / "model")), net


def ask(model, body) -> tuple[int, dict]:
    """(HTTP status, JSON body) of POST /invocations with `body`."""
    data = body if isinstance(body, str) else json.dumps(body)
    try:
        result = scoring_server.invocations(data, "application/json", model, model.metadata.get_input_schema())
    except MlflowException as error:
        return error.get_http_status_code(), json.loads(error.serialize_as_json())
    return result.status, json.loads(result.response)


BIG = int(np.sqrt(MAX_REQUEST_PIXELS / 2)) + 1  # two such images exceed the limit


@pytest.mark.parametrize(("body", "expected"), [
    ({"inputs": {"image": "not an image"}}, "image 0: a string"),
    ({"inputs": {"image": ["abc"]}}, "image 0: holds strings"),
    ({"inputs": {"image": [[[1.0, float("nan")], [3.0, 4.0]]]}}, "image 0: NaN or infinite"),
    ({"inputs": {"image": [[[1.0, float("inf")], [3.0, 4.0]]]}}, "image 0: NaN or infinite"),
    ({"inputs": {"image": [[1, 2, 3]]}}, "image 0: expected H x W or H x W x 1|3|4 pixels, got shape (3,)"),
    ({"inputs": {"image": [[[[[1]]]]]}}, "image 0: expected H x W or H x W x 1|3|4 pixels"),
    ({"inputs": {"image": [[[1, 2], [3, 999]]]}}, "image 0: expected uint8 pixels"),
    ({"inputs": {"image": []}}, "image 0: empty"),
])
def test_each_bad_request_gets_a_400_naming_the_problem_without_a_stack_trace(served, body, expected) -> None:
    status, answer = ask(served[0], body)
    assert status == 400, answer
    assert expected in answer["message"]
    assert "stack_trace" not in answer and "Traceback" not in answer["message"]


def test_an_oversized_request_is_refused_before_any_pixel_is_computed(served) -> None:
    images = [np.zeros((BIG, BIG), np.uint8)] * 2
    with pytest.raises(MlflowException, match=f"more than the {MAX_REQUEST_PIXELS} one request may hold") as error:
        served[0].predict({"image": images})
    assert error.value.get_http_status_code() == 400


def test_16_concurrent_good_requests_are_all_answered_correctly(served) -> None:
    model, net = served
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (32, 32), dtype=np.uint8) for _ in range(16)]
    prepared = torch.stack([(torch.from_numpy(i).float()[None] / 255 - 0.4) / 0.3 for i in images])
    with torch.no_grad():
        expected = net(prepared).softmax(1).numpy()  # 32 px grey in a 32 px model: only normalisation applies
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda image: ask(model, {"inputs": {"image": [image.tolist()]}}), images))
    assert [status for status, _ in answers] == [200] * 16
    got = np.array([[answer["predictions"][0][name] for name in CLASSES] for _, answer in answers])
    np.testing.assert_allclose(got, expected, atol=1e-5)
