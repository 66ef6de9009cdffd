"""Where a run's data lives in the data bucket (DESIGN.md "Identities and storage", docs/architecture.md).

Every loop Lambda names keys through ``RunLayout`` so the layout is written down once.
"""

from __future__ import annotations

from dataclasses import dataclass

from lambdas.adapters.documents import run_config_key

POOL_SHARD_LINES = 10_000
"""Lines per pool shard: one batch-transform input file and one RouteShard call each."""


def iteration_label(iteration: int) -> str:
    """``0003``: how an iteration is named in keys and job names."""
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")
    return f"{iteration:04d}"


@dataclass(frozen=True)
class RunLayout:
    """The keys of one run (``runs/<run-id>/…``) in ``bucket``."""

    bucket: str
    run_id: str

    @property
    def root(self) -> str:
        return f"runs/{self.run_id}/"

    def uri(self, key: str) -> str:
        """``s3://<bucket>/<key>``."""
        return f"s3://{self.bucket}/{key}"

    @property
    def config(self) -> str:
        """The validated configuration the run uses (a snapshot taken when it started)."""
        return run_config_key(self.run_id)

    @property
    def pool_prefix(self) -> str:
        return f"{self.root}pool/"

    def pool_shard(self, iteration: int, index: int) -> str:
        """Pool shard ``index`` of the images that joined the pool at ``iteration``."""
        return f"{self.pool_prefix}i{iteration_label(iteration)}-{index:05d}.jsonl"

    def pool_shards_of(self, iteration: int) -> str:
        """The prefix of the pool shards written at ``iteration``."""
        return f"{self.pool_prefix}i{iteration_label(iteration)}-"

    def iteration(self, iteration: int) -> str:
        return f"{self.root}iterations/{iteration_label(iteration)}/"

    def human(self, iteration: int) -> str:
        return f"{self.iteration(iteration)}human/"

    def tasks(self, iteration: int) -> str:
        return f"{self.human(iteration)}tasks.jsonl"

    def labels(self, iteration: int) -> str:
        return f"{self.human(iteration)}labels/"

    def rejected(self, iteration: int) -> str:
        return f"{self.human(iteration)}rejected/"

    def gold(self, iteration: int) -> str:
        return f"{self.human(iteration)}gold/"

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

    def inference(self, iteration: int) -> str:
        return f"{self.iteration(iteration)}inference/"

    def threshold(self, iteration: int) -> str:
        return f"{self.iteration(iteration)}threshold.json"

    def routed_auto(self, iteration: int, shard_name: str) -> str:
        """Auto-label candidates (Prediction lines) of one inference shard."""
        return f"{self.iteration(iteration)}routing/auto/{shard_name}.jsonl"

    def routed_candidates(self, iteration: int, shard_name: str) -> str:
        """One inference shard's candidates for humans, audit candidates and counts (JSON)."""
        return f"{self.iteration(iteration)}routing/candidates/{shard_name}.json"

    def routing_prefix(self, iteration: int, kind: str) -> str:
        return f"{self.iteration(iteration)}routing/{kind}/"

    def selection(self, iteration: int) -> str:
        """What SelectImagesForHumans chose and why it stopped."""
        return f"{self.iteration(iteration)}selection.json"

    def metrics(self, iteration: int) -> str:
        return f"{self.iteration(iteration)}metrics.json"

    @property
    def manifests(self) -> str:
        return f"{self.root}manifests/"

    def labelled_ids(self, version: int, shard_name: str) -> str:
        """The image ids (sorted, one per line) of one shard of a manifest version."""
        return f"{self.root}labelled/v{version:04d}/{shard_name}.ids"

    @property
    def exports(self) -> str:
        return f"{self.root}exports/"

    @property
    def report(self) -> str:
        return f"{self.root}report/"

    def failure(self, execution_name: str, state: str) -> str:
        return f"{self.root}failures/{execution_name}-{state}.json"
