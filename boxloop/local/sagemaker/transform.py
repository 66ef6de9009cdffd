"""A batch-transform job run locally, in this process, through the inference module's handler functions.

The job's model (``ModelDataUrl``) is extracted and loaded with ``model_fn``; every object under the input
prefix is split into mini-batches (``SplitType``, ``BatchStrategy``, ``MaxPayloadInMB``) passed through
``input_fn`` / ``predict_fn`` / ``output_fn``, and the results are written to
``<S3OutputPath>/<relative key>.out``.
"""

from __future__ import annotations

import importlib
import io
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from boxloop.local.process_environment import PROCESS_ENVIRONMENT
from boxloop.local.sagemaker.job_code import JobFailure, SageMakerJobCode
from boxloop.local.sagemaker.s3_objects import keys_under, relative_key, s3_client, split_s3_uri

DEFAULT_MAX_PAYLOAD_MB = 6


def _extract_model(s3: Any, model_data_url: str, target: Path) -> None:
    bucket, key = split_s3_uri(model_data_url)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        archive.extractall(target, filter="data")


def mini_batches(body: bytes, split_type: str, batch_strategy: str, max_payload_bytes: int) -> Iterator[bytes]:
    """Split one input object as SageMaker batch transform does (``Line`` split, single or multi record)."""
    if split_type == "None":
        yield body
        return
    if split_type != "Line":
        raise JobFailure(f"ClientError: SplitType {split_type!r} is not supported locally")
    records = [line for line in body.splitlines(keepends=True) if line.strip()]
    if batch_strategy == "SingleRecord":
        yield from records
        return
    batch: list[bytes] = []
    size = 0
    for record in records:
        if batch and size + len(record) > max_payload_bytes:
            yield b"".join(batch)
            batch, size = [], 0
        batch.append(record)
        size += len(record)
    if batch:
        yield b"".join(batch)


def _as_bytes(response: Any) -> bytes:
    if isinstance(response, tuple):
        response = response[0]
    return response.encode() if isinstance(response, str) else bytes(response)


def run_transform_job(job: dict[str, Any], code: SageMakerJobCode) -> int:
    """Run one transform job (request fields plus ``ModelDataUrl``) to completion; returns the input records.

    Raises on failure (JobFailure naming the input object for an error in the handler functions).
    """
    s3 = s3_client()
    inference = importlib.import_module(code.inference_module)
    source = job["TransformInput"]["DataSource"]["S3DataSource"]
    input_bucket, input_prefix = split_s3_uri(source["S3Uri"])
    output_bucket, output_prefix = split_s3_uri(job["TransformOutput"]["S3OutputPath"].rstrip("/") + "/")
    content_type = job["TransformInput"].get("ContentType", "application/json")
    accept = job["TransformOutput"].get("Accept", "application/json")
    line_output = job["TransformOutput"].get("AssembleWith", "None") == "Line"
    split_type = job["TransformInput"].get("SplitType", "None")
    max_payload = int(job.get("MaxPayloadInMB") or DEFAULT_MAX_PAYLOAD_MB) * 1024 * 1024
    variables = {
        name: str(value)
        for name, value in {
            **code.transform_environment,
            **job.get("ModelEnvironment", {}),
            **job.get("Environment", {}),
        }.items()
    }
    records = 0
    with tempfile.TemporaryDirectory(prefix=f"sagemaker-{job['TransformJobName']}-") as model_dir:
        _extract_model(s3, job["ModelDataUrl"], Path(model_dir))
        with PROCESS_ENVIRONMENT.applied(variables, owner=f"transform job {job['TransformJobName']}"):
            model = inference.model_fn(model_dir)
            for key in keys_under(s3, input_bucket, input_prefix):
                body = s3.get_object(Bucket=input_bucket, Key=key)["Body"].read()
                records += sum(1 for line in body.splitlines() if line.strip()) if split_type == "Line" else 1
                outputs = []
                try:
                    for payload in mini_batches(body, split_type, job.get("BatchStrategy", "MultiRecord"), max_payload):
                        prediction = inference.predict_fn(inference.input_fn(payload, content_type), model)
                        output = _as_bytes(inference.output_fn(prediction, accept))
                        outputs.append(output if not line_output or output.endswith(b"\n") else output + b"\n")
                except JobFailure:
                    raise
                except Exception as exc:
                    raise JobFailure(f"ClientError: s3://{input_bucket}/{key}: {type(exc).__name__}: {exc}") from exc
                relative = relative_key(key, input_prefix)
                s3.put_object(Bucket=output_bucket, Key=f"{output_prefix}{relative}.out", Body=b"".join(outputs))
    return records
