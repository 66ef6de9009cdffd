"""The serving layout of a model artefact: ``code/`` beside the weights, as SageMaker's PyTorch serving expects.

SageMaker unpacks ``model.tar.gz`` into ``/opt/ml/model``. The PyTorch inference toolkit then puts
``/opt/ml/model/code`` first on ``PYTHONPATH``, installs ``code/requirements.txt`` and imports the
module that ``SAGEMAKER_PROGRAM`` names (default ``inference.py``) for ``model_fn``, ``input_fn``,
``predict_fn`` and ``output_fn`` (aws/sagemaker-inference-toolkit ``environment.py`` and
``transformer.py``; aws/sagemaker-pytorch-inference-toolkit ``torchserve.py``). A model directory
without ``code/`` is served by the toolkit's default handler, which cannot read our weights or
JSON Lines. Training therefore writes, beside ``model.pt``, ``config.json`` and ``class_map.json``:

- ``code/inference.py``: the handler module, re-exporting ``sagemaker_jobs.inference``'s functions;
- ``code/sagemaker_jobs/`` and ``code/boxloop/``: the Python modules it imports (``boxloop/local/``,
  the local run, is left out);
- ``code/requirements.txt``: the job image's pinned requirements (``sagemaker_jobs/requirements.txt``).
"""

from __future__ import annotations

from pathlib import Path

import boxloop
import sagemaker_jobs

CODE_DIR = "code"
ENTRY_MODULE = "inference"
ENTRY_SCRIPT = f"{ENTRY_MODULE}.py"
REQUIREMENTS_FILE = "requirements.txt"
HANDLER_FUNCTIONS = ("model_fn", "input_fn", "predict_fn", "output_fn")
EXCLUDED_PARTS = frozenset({"__pycache__", "local"})
ENTRY_SOURCE = (
    '"""The model\'s handler module for SageMaker\'s PyTorch serving (SAGEMAKER_PROGRAM=inference.py)."""\n\n'
    "from sagemaker_jobs.inference import input_fn, model_fn, output_fn, predict_fn\n\n"
    f"__all__ = {list(HANDLER_FUNCTIONS)!r}\n"
)


def container_requirements_path() -> Path:
    """``sagemaker_jobs/requirements.txt``: the job image's pinned requirements."""
    return Path(sagemaker_jobs.__file__).resolve().parent / REQUIREMENTS_FILE


def serving_files() -> dict[str, bytes]:
    """Every file of ``code/``: path relative to ``code/`` → content (the running code's own modules)."""
    files: dict[str, bytes] = {ENTRY_SCRIPT: ENTRY_SOURCE.encode()}
    for package in (sagemaker_jobs, boxloop):
        root = Path(package.__file__).resolve().parent
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(root.parent)
            if not EXCLUDED_PARTS.intersection(relative.parts):
                files[relative.as_posix()] = path.read_bytes()
    files[REQUIREMENTS_FILE] = container_requirements_path().read_bytes()
    return files


def write_serving_code(model_dir: Path) -> Path:
    """Write ``code/`` into ``model_dir`` (replacing files of the same name); return the ``code`` directory."""
    code_dir = model_dir / CODE_DIR
    for relative, content in serving_files().items():
        target = code_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return code_dir
