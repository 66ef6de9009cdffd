"""Every key of the data bucket (DESIGN.md "Identities and storage", docs/architecture.md "Storage").

This is the one place a key is spelled: uploads (``incoming/``), registered images (``images/``),
quarantine, the labelling configuration (``config/``), A2I's output objects (``a2i-output/``) and a run's data
(``runs/<run-id>/…``, named by ``RunLayout``). Pure: names only, no storage access.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

INCOMING_PREFIX = "incoming/"
"""Where users drop images: the only event source of ingest."""

IMAGES_PREFIX = "images/"
"""Registered images, content-addressed (``images/<sha256>.<ext>``): the bytes under a key never change."""

QUARANTINE_PREFIX = "quarantine/"
QUARANTINE_REASON_SUFFIX = ".reason.json"

CONFIG_PREFIX = "config/"
CONFIG_KEY = f"{CONFIG_PREFIX}labeling.json"
CONFIG_STATUS_KEY = f"{CONFIG_PREFIX}labeling.status.json"

A2I_OUTPUT_PREFIX = "a2i-output/"
BROWSER_ANSWERS_PREFIX = "answers/"
"""Where the labelling API writes answer documents (A2I's format; the human-answer Lambda is subscribed to it)."""
HUMAN_ANSWER_PREFIXES = (A2I_OUTPUT_PREFIX, BROWSER_ANSWERS_PREFIX)
A2I_OUTPUT_FILE = "output.json"
REJECTED_ANSWERS_PREFIX = "rejected-answers/"
"""Human-answer objects that match no open task: one record each, outside every run (their run is not trusted)."""

RUNS_PREFIX = "runs/"
INDEX_NAME = "index.json"
LATEST_NAME = "LATEST"
METRICS_NAME = "metrics.json"
THRESHOLD_NAME = "threshold.json"
ANSWER_SUFFIX = ".json"
REVIEWED_ANSWER_FOLDERS = {"accepted": "labels", "rejected": "rejected", "gold": "gold", "unlabellable": "unlabellable"}
"""The folder under an iteration's ``human/`` of each kind of reviewed answer (``boxloop.human_loop``)."""
COCO_EXPORT = "coco/annotations.json"
"""The COCO export, relative to a run's ``exports/``."""
YOLO_EXPORT = "yolo"
"""The folder of the YOLO export, relative to a run's ``exports/``."""
VOC_EXPORT = "voc"
"""The folder of the Pascal VOC export, relative to a run's ``exports/``."""

POOL_SHARD_LINES = 10_000
"""Lines per pool shard (and per training shard): one batch-transform input file and one RouteShard call each."""


def image_key(image_id: str, extension: str) -> str:
    """Where ingest copies a registered image: ``images/<image id (SHA-256 of its bytes)>.<extension>``."""
    return f"{IMAGES_PREFIX}{image_id}.{extension}"


def quarantine_key(upload_key: str) -> str:
    """Where a rejected upload goes: ``quarantine/<original key>``."""
    return f"{QUARANTINE_PREFIX}{upload_key}"


def quarantine_reason_key(upload_key: str) -> str:
    """Where the JSON reason of a rejected upload goes, beside it."""
    return f"{quarantine_key(upload_key)}{QUARANTINE_REASON_SUFFIX}"


def a2i_output_key(flow_definition_name: str, loop_name: str, at: datetime) -> str:
    """Where A2I writes a finished loop's ``output.json`` (under the flow definition's output path)."""
    return f"{A2I_OUTPUT_PREFIX}{flow_definition_name}/{at:%Y/%m/%d/%H/%M/%S}/{loop_name}/{A2I_OUTPUT_FILE}"


def browser_answer_key(run_id: str, iteration: int, task_id: str) -> str:
    """Where the labelling API stores an answer: ``answers/<run-id>/<NNNN>/<task-id>/output.json``."""
    return f"{BROWSER_ANSWERS_PREFIX}{run_id}/{iteration_label(iteration)}/{task_id}/{A2I_OUTPUT_FILE}"


def rejected_answer_key(answer_key: str) -> str:
    """The record of a rejected answer object: ``rejected-answers/<sha256 of its key>.json`` (any key maps to a safe
    name, and a redelivered object to the same record)."""
    return f"{REJECTED_ANSWERS_PREFIX}{hashlib.sha256(answer_key.encode()).hexdigest()}{ANSWER_SUFFIX}"


def is_human_answer_key(key: str) -> bool:
    """Whether ``key`` names a human answer: an A2I loop's or the labelling API's ``output.json``."""
    return key.startswith(HUMAN_ANSWER_PREFIXES) and key.endswith(f"/{A2I_OUTPUT_FILE}")


def iteration_label(iteration: int) -> str:
    """``0003``: how an iteration is named in keys and job names."""
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")
    return f"{iteration:04d}"


def version_name(version: int) -> str:
    """The folder name of a manifest version: ``v0003``."""
    return f"v{version:04d}"


def shard_name(shard_index: int) -> str:
    """The file name of shard ``shard_index`` of a manifest version or a training channel."""
    return f"shard-{shard_index:05d}.jsonl"


def run_root(run_id: str) -> str:
    """``runs/<run-id>/``."""
    return f"{RUNS_PREFIX}{run_id}/"


def manifests_prefix(run_id: str) -> str:
    """``runs/<run-id>/manifests/``: the run's manifest versions and ``LATEST``."""
    return f"{run_root(run_id)}manifests/"


def manifest_version_prefix(run_id: str, version: int) -> str:
    """The folder of one manifest version (its shards and ``index.json``): ``runs/<run>/manifests/v0003/``."""
    return f"{manifests_prefix(run_id)}{version_name(version)}/"


def manifest_key(run_id: str, version: int, name: str) -> str:
    """The key of a file (shard or index) of a version: ``runs/<run>/manifests/v0003/<name>``."""
    return f"{manifest_version_prefix(run_id, version)}{name}"


def latest_key(run_id: str) -> str:
    """The key of the run's ``LATEST`` pointer (written last, names the newest complete version)."""
    return f"{manifests_prefix(run_id)}{LATEST_NAME}"


def answer_image_id(key: str) -> str:
    """The image id in a per-image answer key (``…/labels/<image-id>.json``)."""
    return key.rsplit("/", 1)[-1].removesuffix(ANSWER_SUFFIX)


@dataclass(frozen=True)
class RunLayout:
    """The keys of one run (``runs/<run-id>/…``) in ``bucket``."""

    bucket: str
    run_id: str

    @property
    def root(self) -> str:
        return run_root(self.run_id)

    def uri(self, key: str) -> str:
        """``s3://<bucket>/<key>``."""
        return f"s3://{self.bucket}/{key}"

    @property
    def config(self) -> str:
        """The validated configuration the run uses (a snapshot taken when it started)."""
        return f"{self.root}config.json"

    @property
    def pool_prefix(self) -> str:
        return f"{self.root}pool/"

    @property
    def pool_index(self) -> str:
        """Lines per pool shard (kept outside ``pool/``, the batch transform's input)."""
        return f"{self.root}pool-index.json"

    def pool_shard(self, iteration: int, index: int) -> str:
        """Pool shard ``index`` of the images that joined the pool at ``iteration``."""
        return f"{self.pool_shards_of(iteration)}{index:05d}.jsonl"

    def pool_shards_of(self, iteration: int) -> str:
        """The prefix of the pool shards written at ``iteration``."""
        return f"{self.pool_prefix}i{iteration_label(iteration)}-"

    @property
    def iterations(self) -> str:
        return f"{self.root}iterations/"

    def iteration(self, iteration: int) -> str:
        return f"{self.iterations}{iteration_label(iteration)}/"

    def human(self, iteration: int) -> str:
        return f"{self.iteration(iteration)}human/"

    def tasks(self, iteration: int) -> str:
        return f"{self.human(iteration)}tasks.jsonl"

    def reviewed_answers(self, iteration: int, kind: str) -> str:
        """The folder of one kind of reviewed answer (``REVIEWED_ANSWER_FOLDERS``), one document per image."""
        return f"{self.human(iteration)}{REVIEWED_ANSWER_FOLDERS[kind]}/"

    def reviewed_answer(self, iteration: int, kind: str, image_id: str) -> str:
        """The reviewed answer of one image, written once."""
        return f"{self.reviewed_answers(iteration, kind)}{image_id}{ANSWER_SUFFIX}"

    def labels(self, iteration: int) -> str:
        """Accepted, QC-passed, consolidated human labels."""
        return self.reviewed_answers(iteration, "accepted")

    def label(self, iteration: int, image_id: str) -> str:
        return self.reviewed_answer(iteration, "accepted", image_id)

    def rejected(self, iteration: int) -> str:
        """Human answers that failed QC, with the reasons (the images return to the pool)."""
        return self.reviewed_answers(iteration, "rejected")

    def gold(self, iteration: int) -> str:
        """The workers' scores on gold images against their known answers."""
        return self.reviewed_answers(iteration, "gold")

    def unlabellable(self, iteration: int) -> str:
        """Images a labeller said cannot be labelled, with the reason."""
        return self.reviewed_answers(iteration, "unlabellable")

    def training_channel(self, iteration: int, channel: str) -> str:
        return f"{self.iteration(iteration)}training/{channel}/"

    def model_output(self, iteration: int) -> str:
        return f"{self.iteration(iteration)}model/"

    def model_record(self, iteration: int) -> str:
        """``model.json``: the training job whose model this iteration's inference used."""
        return f"{self.iteration(iteration)}model.json"

    def model_artifact(self, iteration: int, training_job_name: str) -> str:
        """Where SageMaker puts the training job's ``model.tar.gz`` under the iteration's model output."""
        return f"{self.model_output(iteration)}{training_job_name}/output/model.tar.gz"

    def inference_input(self, iteration: int) -> str:
        """The pool shards' lines this iteration's pool inference reads (``boxloop.inference_scope``)."""
        return f"{self.iteration(iteration)}inference-input/"

    def inference(self, iteration: int) -> str:
        return f"{self.iteration(iteration)}inference/"

    def threshold(self, iteration: int) -> str:
        return f"{self.iteration(iteration)}{THRESHOLD_NAME}"

    def routed_auto(self, iteration: int, shard_name: str) -> str:
        """Auto-label candidates (Prediction lines) of one inference shard."""
        return f"{self.routing_prefix(iteration, 'auto')}{shard_name}.jsonl"

    def routed_candidates(self, iteration: int, shard_name: str) -> str:
        """One inference shard's candidates for humans, audit candidates and counts (JSON)."""
        return f"{self.routing_prefix(iteration, 'candidates')}{shard_name}.json"

    def routing_prefix(self, iteration: int, kind: str) -> str:
        return f"{self.iteration(iteration)}routing/{kind}/"

    def selection(self, iteration: int) -> str:
        """What SelectImagesForHumans chose and why it stopped."""
        return f"{self.iteration(iteration)}selection.json"

    def metrics(self, iteration: int) -> str:
        return f"{self.iteration(iteration)}{METRICS_NAME}"

    @property
    def manifests(self) -> str:
        return manifests_prefix(self.run_id)

    def manifest_version(self, version: int) -> str:
        """The folder of one manifest version (its shards and ``index.json``)."""
        return manifest_version_prefix(self.run_id, version)

    @property
    def latest(self) -> str:
        return latest_key(self.run_id)

    def labelled_ids(self, version: int, shard_name: str) -> str:
        """The image ids (sorted, one per line) of one shard of a manifest version."""
        return f"{self.root}labelled/{version_name(version)}/{shard_name}.ids"

    @property
    def exports(self) -> str:
        return f"{self.root}exports/"

    @property
    def report(self) -> str:
        return f"{self.root}report/"

    @property
    def report_json(self) -> str:
        """The report's figures (Finalize)."""
        return f"{self.report}report.json"

    @property
    def report_html(self) -> str:
        """The report page (Finalize)."""
        return f"{self.report}report.html"

    @property
    def failures(self) -> str:
        """RecordFailure's records of why the run failed (``boxloop.run_failure.FailureRecord``)."""
        return f"{self.root}failures/"

    def failure(self, execution_name: str, state: str) -> str:
        return f"{self.failures}{execution_name}-{state}.json"
