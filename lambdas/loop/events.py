"""The payloads the state machine sends each loop Lambda (``infra/labelling_definition.py``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from boxloop.layout import CONFIG_KEY, RunLayout


class RunEvent(BaseModel):
    """Fields every loop payload carries."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(min_length=1, max_length=44)
    bucket: str = Field(min_length=1)
    config_key: str = CONFIG_KEY

    @property
    def layout(self) -> RunLayout:
        return RunLayout(bucket=self.bucket, run_id=self.run_id)


class RegisterPoolEvent(RunEvent):
    """RegisterPool / AddNewArrivalsToPool: the execution and the iteration it starts."""

    execution_name: str = Field(min_length=1)
    iteration: int = Field(ge=0)


class IterationEvent(RunEvent):
    """SelectWaveForPeople, CheckHumanLabelQuality, SplitTrainValidation, SelectImagesForHumans."""

    iteration: int = Field(ge=0)


class ComputeThresholdEvent(IterationEvent):
    """ComputeThreshold: the training job whose model ran the pool inference."""

    model_version: str = Field(min_length=1)


class PublishEvent(IterationEvent):
    """PublishManifestVersion."""

    execution_name: str = Field(min_length=1)


class FinalizeEvent(RunEvent):
    """Finalize."""

    execution_name: str = Field(min_length=1)


class ShardItem(BaseModel):
    """One Distributed Map item: a shard's key (ChooseImagesToInfer: a pool shard; RouteImages: an inference
    output shard)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(min_length=1, max_length=44)
    bucket: str = Field(min_length=1)
    iteration: int = Field(ge=1)
    shard_key: str = Field(min_length=1)

    @property
    def layout(self) -> RunLayout:
        return RunLayout(bucket=self.bucket, run_id=self.run_id)

    @property
    def file_name(self) -> str:
        """The shard's file name (``i0000-00000.jsonl``, ``i0000-00000.jsonl.out``)."""
        return self.shard_key.rsplit("/", 1)[-1]


class ShardEvent(BaseModel):
    """ChooseShardImagesToInfer and RouteShard: ``{"shard": <item>}``."""

    shard: ShardItem


class FailureDetail(BaseModel):
    """What a Catch puts at ``$.failure``."""

    Error: str = "Unknown"
    Cause: str = ""


class FailedState(BaseModel):
    """The execution's state when a Task failed (RecordFailure gets all of it)."""

    model_config = ConfigDict(extra="allow")

    run_id: str = Field(min_length=1)
    bucket: str = Field(min_length=1)
    failure: FailureDetail = Field(default_factory=FailureDetail)
    iteration: Any = None


class RecordFailureEvent(BaseModel):
    """RecordFailure: the whole state and the execution name."""

    state: FailedState
    execution_name: str = Field(min_length=1)
