"""SageMaker's serving contract for batch transform, running the handler code the model artefact carries.

SageMaker starts the container with ``serve``; it sends ``GET /ping`` until the container answers 200,
then ``POST /invocations`` with each mini-batch (``ContentType``/``Accept`` of the transform job) on
port 8080 (docs: "Custom Inference Code with Batch Transform").

The handler module is found as SageMaker's PyTorch inference toolkit finds it: the model directory is
``$SAGEMAKER_BASE_DIR/model`` (``/opt/ml/model``), its ``code/`` directory comes first on the import
path, the module is ``$SAGEMAKER_PROGRAM`` without ``.py`` (default ``inference``), and the request
runs ``output_fn(predict_fn(input_fn(body, content_type), model_fn(model_dir)), accept)``; a
``transform_fn`` may not come with those three (aws/sagemaker-inference-toolkit ``environment.py``,
``transformer.py``; aws/sagemaker-pytorch-inference-toolkit ``torchserve.py``). Two differences, both
to fail clearly instead of serving something else: a module lacking one of the four functions is an
error (the toolkit would fall back to its default handler, which cannot read our model), and
``code/requirements.txt`` is checked against the installed versions instead of being pip-installed
(the image holds the pinned set; a job must not download a different torch).

The toolkit runs this on TorchServe, which PyTorch has put in limited maintenance (pytorch/serve#3396)
and which needs a Java runtime; batch transform sends one request at a time here
(``MaxConcurrentTransforms=1``), so the standard library's HTTP server is enough.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sagemaker_jobs.accelerator import require_usable_gpu
from sagemaker_jobs.serving_layout import CODE_DIR, ENTRY_SCRIPT, HANDLER_FUNCTIONS, REQUIREMENTS_FILE

DEFAULT_BASE_DIR = "/opt/ml"
DEFAULT_PORT = 8080
DEFAULT_ACCEPT = "application/jsonlines"


class ServingError(RuntimeError):
    """The model artefact cannot be served; the message says what is missing or wrong."""


@dataclass(frozen=True)
class Handlers:
    """The handler module's four functions."""

    model_fn: Callable[[str], Any]
    input_fn: Callable[[bytes, str], Any]
    predict_fn: Callable[[Any, Any], Any]
    output_fn: Callable[[Any, str], bytes]


def module_name(program: str) -> str:
    """``SAGEMAKER_PROGRAM`` as a module name (``inference.py`` → ``inference``), as the toolkit parses it."""
    return program[: -len(".py")] if program.endswith(".py") else program


def load_handlers(model_dir: Path, program: str = ENTRY_SCRIPT) -> Handlers:
    """Import ``program`` from ``model_dir/code`` (first on ``sys.path``) and return its handler functions."""
    code_dir = model_dir / CODE_DIR
    if not code_dir.is_dir():
        raise ServingError(
            f"{model_dir} has no {CODE_DIR}/ directory: the artefact was not written by sagemaker_jobs.train"
        )
    if str(code_dir) not in sys.path:
        sys.path.insert(0, str(code_dir))
    name = module_name(program)
    sys.modules.pop(name, None)
    if importlib.util.find_spec(name) is None:
        raise ServingError(f"{code_dir} has no module {name!r} (SAGEMAKER_PROGRAM={program})")
    module = importlib.import_module(name)
    missing = [function for function in HANDLER_FUNCTIONS if not callable(getattr(module, function, None))]
    if missing:
        raise ServingError(f"{module.__file__} defines no {', '.join(missing)}")
    if getattr(module, "transform_fn", None) is not None:
        raise ServingError(f"{module.__file__}: transform_fn cannot be combined with input_fn, predict_fn, output_fn")
    return Handlers(*(getattr(module, function) for function in HANDLER_FUNCTIONS))


def unmet_requirements(requirements_file: Path) -> list[str]:
    """The ``name==version`` pins of ``requirements_file`` that the installed packages do not meet.

    A local version label (``2.14.1+cpu``) meets the pin of its public version; another line is an error.
    """
    unmet = []
    for line in requirements_file.read_text().splitlines():
        pin = line.split("#", 1)[0].strip()
        if not pin:
            continue
        name, separator, version = pin.partition("==")
        if not separator or not name.strip() or not version.strip():
            raise ServingError(f"{requirements_file}: {pin!r} is not a name==version pin")
        name = name.split("[", 1)[0].strip()
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            unmet.append(f"{pin} (not installed)")
            continue
        if installed.split("+", 1)[0] != version.strip():
            unmet.append(f"{pin} (installed {installed})")
    return unmet


class ModelServer:
    """The loaded model and its handlers; ``invoke`` runs one request (one at a time)."""

    def __init__(self, model_dir: Path, program: str = ENTRY_SCRIPT) -> None:
        requirements = model_dir / CODE_DIR / REQUIREMENTS_FILE
        unmet = unmet_requirements(requirements) if requirements.is_file() else []
        if unmet:
            raise ServingError(f"the image does not meet {requirements}: {'; '.join(unmet)}")
        self.handlers = load_handlers(model_dir, program)
        self.model = self.handlers.model_fn(str(model_dir))
        self._lock = threading.Lock()

    def invoke(self, body: bytes, content_type: str, accept: str) -> bytes:
        """``output_fn(predict_fn(input_fn(body, content_type), model), accept)``."""
        with self._lock:
            data = self.handlers.input_fn(body, content_type)
            return self.handlers.output_fn(self.handlers.predict_fn(data, self.model), accept)


def _request_handler(server: ModelServer) -> type[BaseHTTPRequestHandler]:
    class SageMakerRequests(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._reply(200, b"") if self.path == "/ping" else self._reply(404, b"not found")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != "/invocations":
                self._reply(404, b"not found")
                return
            accept = self.headers.get("Accept") or DEFAULT_ACCEPT
            accept = DEFAULT_ACCEPT if accept == "*/*" else accept
            try:
                result = server.invoke(body, self.headers.get("Content-Type", ""), accept)
            except ValueError as exc:
                self._reply(400, str(exc).encode())
                return
            except Exception:
                trace = traceback.format_exc()
                print(trace, file=sys.stderr, flush=True)
                self._reply(500, trace.encode())
                return
            self._reply(200, result, accept)

    return SageMakerRequests


def make_server(model_dir: Path, port: int, program: str = ENTRY_SCRIPT, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Load the model and bind the HTTP server (``port`` 0 picks a free port); ``serve_forever`` serves."""
    return ThreadingHTTPServer((host, port), _request_handler(ModelServer(model_dir, program)))


def main(environ: Mapping[str, str] = os.environ) -> int:
    """``serve``: check the GPU, load ``/opt/ml/model``, answer SageMaker until stopped."""
    require_usable_gpu()
    model_dir = Path(environ.get("SAGEMAKER_BASE_DIR", DEFAULT_BASE_DIR)) / "model"
    server = make_server(
        model_dir,
        int(environ.get("SAGEMAKER_BIND_TO_PORT", DEFAULT_PORT)),
        environ.get("SAGEMAKER_PROGRAM", ENTRY_SCRIPT),
    )
    print(f"serving {model_dir} with {Path(__file__).resolve().parent} on port {server.server_address[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
