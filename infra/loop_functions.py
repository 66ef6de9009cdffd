"""The loop's Lambda functions: one per loop step (``lambdas/loop/<step>.py``), sized per step, with their grants."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from boxloop.layout import CONFIG_PREFIX, RUNS_PREFIX
from infra import state_names as states
from infra.lambda_image import container_function
from infra.nag import acknowledge, arn_token
from infra.run_key_patterns import ANY_RUN, HUMAN_TASKS, every_iteration, every_version
from infra.settings import EnvironmentSettings
from infra.storage import Storage


@dataclass(frozen=True)
class LoopHandler:
    """One loop Lambda: its handler (``module.function``), size and time limit."""

    handler: str
    description: str
    memory_mb: int = 1024
    timeout_minutes: int = 5
    ephemeral_storage_mb: int = 512


LOOP_HANDLERS: dict[str, LoopHandler] = {
    states.REGISTER_POOL: LoopHandler(
        "lambdas.loop.register_pool.handler",
        "Loads the run's configuration, moves pending images into new pool shards, starts each iteration",
        timeout_minutes=15,
    ),
    states.SELECT_WAVE_FOR_PEOPLE: LoopHandler(
        "lambdas.loop.select_initial_sample.handler",
        "Draws the next wave people label unaided (initial sample, or what is left) within the budget",
        2048,
        15,
    ),
    states.CHECK_HUMAN_LABEL_QUALITY: LoopHandler(
        "lambdas.loop.check_human_label_quality.handler", "Fails the run when too many initial labels fail QC"
    ),
    states.SPLIT_TRAIN_VALIDATION: LoopHandler(
        "lambdas.loop.split_train_validation.handler",
        "Splits human labels into training and validation manifests",
        2048,
        15,
    ),
    states.CHOOSE_SHARD_IMAGES_TO_INFER: LoopHandler(
        "lambdas.loop.choose_shard_images_to_infer.handler",
        "Writes one pool shard's unlabelled and validation images as the pool inference's input",
        2048,
        15,
    ),
    states.COMPUTE_THRESHOLD: LoopHandler(
        "lambdas.loop.compute_threshold.handler", "Chooses the guaranteed auto-labelling threshold", 2048, 15
    ),
    states.ROUTE_SHARD: LoopHandler(
        "lambdas.loop.route_shard.handler",
        "Routes one inference shard: auto-labels and candidates for humans",
        2048,
        15,
    ),
    states.SELECT_IMAGES_FOR_HUMANS: LoopHandler(
        "lambdas.loop.select_images_for_humans.handler",
        "Picks the uncertain images humans label within budget",
        2048,
        15,
    ),
    states.PUBLISH_MANIFEST_VERSION: LoopHandler(
        "lambdas.loop.publish_manifest_version.handler",
        "Publishes the next manifest version and iteration metrics",
        3008,
        15,
        ephemeral_storage_mb=10240,
    ),
    states.FINALIZE: LoopHandler(
        "lambdas.loop.finalize.handler",
        "Writes exports and report, notifies, releases the active-run lock",
        3008,
        15,
        ephemeral_storage_mb=10240,
    ),
    states.RECORD_FAILURE: LoopHandler(
        "lambdas.loop.record_failure.handler", "Records a failed run (resumable) and releases the active-run lock"
    ),
}
"""The loop Lambdas by the state that calls them (``RegisterPool`` also runs as ``AddNewArrivalsToPool``)."""

LOOP_WRITES: dict[str, tuple[str, ...]] = {
    states.REGISTER_POOL: (ANY_RUN.config, f"{ANY_RUN.pool_prefix}*", ANY_RUN.pool_index),
    states.SELECT_WAVE_FOR_PEOPLE: HUMAN_TASKS,
    states.CHECK_HUMAN_LABEL_QUALITY: (),
    states.SPLIT_TRAIN_VALIDATION: (f"{every_iteration(lambda iteration: ANY_RUN.training_channel(iteration, '*'))}*",),
    states.CHOOSE_SHARD_IMAGES_TO_INFER: (f"{every_iteration(ANY_RUN.inference_input)}*",),
    states.COMPUTE_THRESHOLD: (every_iteration(ANY_RUN.threshold), every_iteration(ANY_RUN.model_record)),
    states.ROUTE_SHARD: (f"{every_iteration(lambda iteration: ANY_RUN.routing_prefix(iteration, '*'))}*",),
    states.SELECT_IMAGES_FOR_HUMANS: HUMAN_TASKS,
    states.PUBLISH_MANIFEST_VERSION: (
        f"{ANY_RUN.manifests}*",
        every_version(lambda version: ANY_RUN.labelled_ids(version, "*")),
        every_iteration(ANY_RUN.metrics),
    ),
    states.FINALIZE: (f"{ANY_RUN.exports}*", f"{ANY_RUN.report}*"),
    states.RECORD_FAILURE: (ANY_RUN.failure("*", "*"),),
}
"""What each loop Lambda may write: object key patterns under ``runs/*/`` (every one of them may read ``runs/*``).
No loop Lambda deletes; a narrower grant would need a role per run (docs/stack.md, "Grants")."""

RUNS_TABLE_WRITERS = (
    states.REGISTER_POOL,
    states.SELECT_WAVE_FOR_PEOPLE,
    states.SELECT_IMAGES_FOR_HUMANS,
    states.PUBLISH_MANIFEST_VERSION,
    states.FINALIZE,
    states.RECORD_FAILURE,
)


def loop_functions(
    scope: Construct,
    *,
    settings: EnvironmentSettings,
    storage: Storage,
    notifications: sns.ITopic,
    environment: dict[str, str],
) -> dict[str, lambda_.IFunction]:
    """Create ``LOOP_HANDLERS`` under ``scope`` (construct ids ``<name>Function``) with the data each one needs."""
    functions: dict[str, lambda_.IFunction] = {}
    for name, spec in LOOP_HANDLERS.items():
        env = dict(environment)
        if name == states.FINALIZE:
            env["NOTIFICATION_TOPIC_ARN"] = notifications.topic_arn
        if name == states.REGISTER_POOL:
            env["TRAINING_MODEL"] = settings.training_model
            env["TRAINING_MAX_SECONDS"] = str(settings.training_max_seconds)
            env["TRAINING_EPOCHS"] = str(settings.training_epochs)
            env["TRAINING_MIN_STEPS"] = str(settings.training_min_steps)
        function = container_function(
            scope,
            f"{name}Function",
            handler=spec.handler,
            description=spec.description,
            service_name="boxloop-loop",
            environment=env,
            settings=settings,
            timeout=Duration.minutes(spec.timeout_minutes),
            memory_size=spec.memory_mb,
            ephemeral_storage_mb=spec.ephemeral_storage_mb,
        )
        storage.data_bucket.grant_read(function, f"{RUNS_PREFIX}*")
        for key_pattern in LOOP_WRITES[name]:
            storage.data_bucket.grant_put(function, key_pattern)
        acknowledge(
            function,
            "AwsSolutions-IAM5",
            "Run ids, iterations and versions are chosen at run time: the loop writes runs/*/<its own files>.",
            [
                f"Resource::{arn_token(storage.data_bucket)}/{pattern}"
                for pattern in LOOP_WRITES[name]
                if "*" in pattern
            ],
        )
        functions[name] = function
    storage.data_bucket.grant_read(functions[states.REGISTER_POOL], f"{CONFIG_PREFIX}*")
    storage.images_table.grant_read_write_data(functions[states.REGISTER_POOL])
    for name in RUNS_TABLE_WRITERS:
        storage.runs_table.grant_read_write_data(functions[name])
    notifications.grant_publish(functions[states.FINALIZE])
    return functions
