"""The job image's contract end to end: ``train`` from SageMaker's files, then ``serve`` the packed artefact.

A tiny model is trained through ``python -m sagemaker_jobs.container train`` from SageMaker's
``/opt/ml`` layout, packed into ``model.tar.gz`` as SageMaker packs ``/opt/ml/model``, unpacked into a
fresh ``/opt/ml/model`` and served by ``serve``'s process (``container.serving_command``): it finds
``code/inference.py`` as SageMaker's PyTorch inference toolkit does and answers ``/ping`` and a JSON
Lines ``/invocations`` request over HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from boxloop.models import Prediction
from sagemaker_jobs.accelerator import UnusableGpuError, require_usable_gpu
from sagemaker_jobs.container import serving_command, training_variables
from sagemaker_jobs.serving import ServingError, load_handlers, unmet_requirements
from sagemaker_jobs.serving_layout import container_requirements_path

from .helpers import REPO_ROOT, image_record, tiny_hyperparameters

JSONLINES = "application/jsonlines"


def _sagemaker_training_root(root: Path, labelled_sets: tuple[Path, Path], hyperparameters: dict[str, str]) -> Path:
    """``/opt/ml`` as SageMaker lays it out for a training job with train and validation channels."""
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps({**hyperparameters, "sagemaker_region": "us-east-1"}))
    channels = {"train": {"ContentType": JSONLINES}, "validation": {"ContentType": JSONLINES}}
    (config / "inputdataconfig.json").write_text(json.dumps(channels))
    for name, source in zip(channels, labelled_sets, strict=True):
        shutil.copytree(source, root / "input" / "data" / name)
    return root


def _container(arguments: list[str], base_dir: Path, **environ: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sagemaker_jobs.container", *arguments],
        env={**os.environ, "SAGEMAKER_BASE_DIR": str(base_dir), **environ},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def served_model(tmp_path_factory: pytest.TempPathFactory, labelled_sets: tuple[Path, Path]) -> Path:
    """``/opt/ml`` of a transform job: the artefact a ``train`` run packed, unpacked into ``model/``."""
    training = _sagemaker_training_root(tmp_path_factory.mktemp("training"), labelled_sets, tiny_hyperparameters())
    completed = _container(["train"], training)
    assert completed.returncode == 0, completed.stderr
    archive = training / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as packed:
        for path in sorted((training / "model").iterdir()):
            packed.add(path, arcname=path.name)
    serving = tmp_path_factory.mktemp("serving")
    with tarfile.open(archive) as packed:
        packed.extractall(serving / "model", filter="data")
    return serving


def test_the_artefact_carries_the_serving_code_beside_the_weights(served_model: Path) -> None:
    model_dir = served_model / "model"
    assert {"model.pt", "config.json", "class_map.json", "code"} <= {path.name for path in model_dir.iterdir()}
    code = model_dir / "code"
    assert (code / "inference.py").is_file()
    assert (code / "sagemaker_jobs" / "inference.py").is_file() and (code / "boxloop" / "models.py").is_file()
    assert not (code / "boxloop" / "local").exists()
    assert (code / "requirements.txt").read_bytes() == container_requirements_path().read_bytes()
    assert unmet_requirements(code / "requirements.txt") == []


def test_serve_finds_code_inference_py_and_answers_a_jsonlines_request(
    served_model: Path, labelled_sets: tuple[Path, Path], tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environ = {**os.environ, "SAGEMAKER_BIND_TO_PORT": str(port), "SAGEMAKER_PROGRAM": "inference.py"}
    command, environment = serving_command(environ, served_model)
    environment["SAGEMAKER_BASE_DIR"] = str(served_model)
    log = tmp_path / "serve.log"
    with open(log, "w") as output:
        server = subprocess.Popen(command, env=environment, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_for_ping(port, server, log)
        assert f"with {served_model / 'model' / 'code' / 'sagemaker_jobs'} on port {port}" in log.read_text()
        images = sorted((labelled_sets[1] / "images").glob("*.png"))[:3]
        lines = [json.dumps(image_record(path, index)) for index, path in enumerate(images)] + ["not json"]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data="\n".join(lines).encode(),
            headers={"Content-Type": JSONLINES, "Accept": JSONLINES},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            assert response.headers["Content-Type"] == JSONLINES
            predictions = [Prediction.model_validate_json(line) for line in response.read().decode().split("\n")]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert [p.image_id for p in predictions[:3]] == [f"{index:064x}" for index in range(3)]
    assert all(p.error is None and len(p.embedding) > 0 for p in predictions[:3])
    assert predictions[3].error is not None and "line 4" in predictions[3].error


def _wait_for_ping(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    raise AssertionError(f"serve did not answer /ping: {log.read_text()}")


def test_handler_discovery_refuses_what_the_toolkit_would_serve_with_its_defaults(tmp_path: Path) -> None:
    with pytest.raises(ServingError, match="no code/ directory"):
        load_handlers(tmp_path)
    code = tmp_path / "code"
    code.mkdir()
    with pytest.raises(ServingError, match="no module 'handler_a'"):
        load_handlers(tmp_path, "handler_a.py")
    (code / "handler_b.py").write_text("def model_fn(d):\n    return d\n\ndef input_fn(b, c):\n    return b\n")
    with pytest.raises(ServingError, match="defines no predict_fn, output_fn"):
        load_handlers(tmp_path, "handler_b.py")
    functions = "".join(
        f"def {name}(*a):\n    return a\n\n" for name in ("model_fn", "input_fn", "predict_fn", "output_fn")
    )
    (code / "handler_c.py").write_text(functions + "def transform_fn(*a):\n    return a\n")
    with pytest.raises(ServingError, match="transform_fn cannot be combined"):
        load_handlers(tmp_path, "handler_c.py")


def test_requirements_that_the_image_does_not_meet_are_named(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# pins\nnumpy==0.0.1\nno-such-package-boxloop==1.0\n")
    assert unmet_requirements(requirements) == [
        f"numpy==0.0.1 (installed {__import__('numpy').__version__})",
        "no-such-package-boxloop==1.0 (not installed)",
    ]
    requirements.write_text("numpy>=1\n")
    with pytest.raises(ServingError, match="not a name==version pin"):
        unmet_requirements(requirements)


def test_training_variables_follow_the_toolkits_script_mode(tmp_path: Path, labelled_sets: tuple[Path, Path]) -> None:
    root = _sagemaker_training_root(tmp_path, labelled_sets, tiny_hyperparameters())
    variables = training_variables(root)
    assert variables["SM_CHANNEL_TRAIN"] == str(root / "input" / "data" / "train")
    assert variables["SM_CHANNEL_VALIDATION"] == str(root / "input" / "data" / "validation")
    assert variables["SM_MODEL_DIR"] == str(root / "model")
    assert variables["SM_OUTPUT_DATA_DIR"] == str(root / "output" / "data")
    hyperparameters = json.loads(variables["SM_HPS"])
    assert hyperparameters["classes"] == ["red-box", "blue-box"] and hyperparameters["image_size"] == 64
    assert "sagemaker_region" not in hyperparameters


def test_a_failed_training_job_leaves_its_reason_for_sagemaker(
    tmp_path: Path, labelled_sets: tuple[Path, Path]
) -> None:
    root = _sagemaker_training_root(tmp_path, labelled_sets, tiny_hyperparameters(model="resnet-9000"))
    completed = _container(["train"], root)
    assert completed.returncode == 1
    assert (root / "output" / "failure").read_text().startswith("SettingsError: invalid hyperparameters")


def test_an_unknown_command_prints_the_usage(tmp_path: Path) -> None:
    completed = _container(["predict"], tmp_path)
    assert completed.returncode == 2 and "train|serve" in completed.stderr


def test_a_gpu_that_torch_cannot_use_stops_the_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    control = tmp_path / "nvidiactl"
    assert require_usable_gpu(control) is False
    control.touch()
    version = tmp_path / "version"
    version.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.256.02\n")
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(UnusableGpuError, match="470.256.02"):
        require_usable_gpu(control, version)
