"""The labelling loop's definition (DESIGN.md "The loop"): which state follows which, and what each one passes on.

Every task retries its transient errors (``task_retries``) and catches everything else into RecordFailure,
which records the failure and ends in RunFailed; docs/stack.md walks through the states.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra import state_names as states
from infra.job_image import JobImage
from infra.loop_tasks import FAILURE_PATH, human_task, lambda_task, shard_map
from infra.sagemaker_tasks import create_model_task, training_task, transform_task
from infra.settings import EnvironmentSettings
from infra.task_retries import LAMBDA_TRANSIENT_ERRORS, SAGEMAKER_TRANSIENT_ERRORS, retry_transient_errors


def labelling_definition(
    scope: Construct,
    *,
    settings: EnvironmentSettings,
    functions: dict[str, lambda_.IFunction],
    sagemaker_role: iam.Role,
    job_image: JobImage,
    bucket: s3.IBucket,
    human_review_queue: sqs.IQueue,
) -> sfn.IChainable:
    """The loop's states under ``scope``, chained; returns the start state (``IsResumedRun``)."""
    run_failed = sfn.Fail(
        scope, states.RUN_FAILED, comment="The failure is recorded under runs/<run>/failures/; resume from the last published version.",
        error_path="$.failure.Error", cause_path="$.failure.Cause",
    )  # fmt: skip
    record_failure = lambda_task(
        scope,
        functions[states.RECORD_FAILURE],
        states.RECORD_FAILURE,
        payload={"state.$": "$", "execution_name.$": "$$.Execution.Name"},
        result_path="$.recorded_failure",
    )
    retry_transient_errors(record_failure, LAMBDA_TRANSIENT_ERRORS)
    record_failure.add_catch(run_failed, errors=["States.ALL"], result_path="$.record_failure_error")
    record_failure.next(run_failed)

    def guarded(task: sfn.TaskStateBase, transient: list[str]) -> sfn.TaskStateBase:
        retry_transient_errors(task, transient)
        task.add_catch(record_failure, errors=["States.ALL"], result_path=FAILURE_PATH)
        return task

    def loop_step(
        function: str, *, payload: dict, result_path: str, state_name: str | None = None
    ) -> sfn.TaskStateBase:
        task = lambda_task(scope, functions[function], state_name or function, payload=payload, result_path=result_path)
        return guarded(task, LAMBDA_TRANSIENT_ERRORS)

    def sagemaker_step(task: sfn.TaskStateBase) -> sfn.TaskStateBase:
        return guarded(task, SAGEMAKER_TRANSIENT_ERRORS)

    run_fields = {"run_id.$": "$.run_id", "bucket.$": "$.bucket", "config_key.$": "$.config_key"}
    iteration_fields = {**run_fields, "iteration.$": "$.iteration.number"}

    register_pool = loop_step(
        states.REGISTER_POOL,
        payload={**run_fields, "execution_name.$": "$$.Execution.Name", "iteration": 0},
        result_path="$.iteration",
    )
    add_new_arrivals = loop_step(
        states.REGISTER_POOL,
        state_name=states.ADD_NEW_ARRIVALS_TO_POOL,
        payload={**run_fields, "execution_name.$": "$$.Execution.Name", "iteration.$": "$.progress.next_iteration"},
        result_path="$.iteration",
    )
    select_wave = loop_step(states.SELECT_WAVE_FOR_PEOPLE, payload=iteration_fields, result_path="$.human_batch")
    check_quality = loop_step(states.CHECK_HUMAN_LABEL_QUALITY, payload=iteration_fields, result_path="$.quality_check")
    split = loop_step(states.SPLIT_TRAIN_VALIDATION, payload=iteration_fields, result_path="$.split")
    jobs = {"settings": settings, "role": sagemaker_role.without_policy_updates()}
    train_from_scratch = sagemaker_step(training_task(scope, **jobs, image=job_image.image, warm_start=False))
    train_warm = sagemaker_step(training_task(scope, **jobs, image=job_image.image, warm_start=True))
    create_model = sagemaker_step(create_model_task(scope, **jobs, image=job_image.image))
    run_inference = sagemaker_step(transform_task(scope, **jobs))
    compute_threshold = loop_step(
        states.COMPUTE_THRESHOLD,
        payload={**iteration_fields, "model_version.$": "$.training.job_name"},
        result_path="$.threshold",
    )
    choose_images_to_infer = shard_map(
        scope,
        states.CHOOSE_IMAGES_TO_INFER,
        comment="Pool inference reads only the unlabelled images and the validation images.",
        bucket=bucket,
        prefix_path="$.iteration.keys.pool",
        shard_state_name=states.CHOOSE_SHARD_IMAGES_TO_INFER,
        shard_function=functions[states.CHOOSE_SHARD_IMAGES_TO_INFER],
        max_concurrency=settings.route_max_concurrency,
    )
    choose_images_to_infer.add_catch(record_failure, errors=["States.ALL"], result_path=FAILURE_PATH)
    route = shard_map(
        scope,
        states.ROUTE_IMAGES,
        comment="Confident images are auto-labelled; the rest become ranked candidates for humans.",
        bucket=bucket,
        prefix_path="$.iteration.keys.inference",
        shard_state_name=states.ROUTE_SHARD,
        shard_function=functions[states.ROUTE_SHARD],
        max_concurrency=settings.route_max_concurrency,
    )
    route.add_catch(record_failure, errors=["States.ALL"], result_path=FAILURE_PATH)
    select_for_humans = loop_step(
        states.SELECT_IMAGES_FOR_HUMANS, payload=iteration_fields, result_path="$.human_batch"
    )
    publish = loop_step(
        states.PUBLISH_MANIFEST_VERSION,
        payload={**iteration_fields, "execution_name.$": "$$.Execution.Name"},
        result_path="$.progress",
    )
    finalize = loop_step(
        states.FINALIZE, payload={**run_fields, "execution_name.$": "$$.Execution.Name"}, result_path="$.final"
    )
    label_wave = human_task(scope, states.LABEL_WAVE_BY_PEOPLE, human_review_queue, check_quality, record_failure)
    label_uncertain = human_task(
        scope, states.LABEL_UNCERTAIN_IMAGES_BY_HUMANS, human_review_queue, publish, record_failure
    )

    resume = sfn.Pass(
        scope,
        states.RESUME_AFTER_LAST_PUBLISHED_VERSION,
        comment="A resumed execution goes on after iteration resume_from - 1 (the last published version).",
        parameters={"number.$": "States.MathAdd($.resume_from, -1)"},
        result_path="$.iteration",
    )
    recall_progress = loop_step(
        states.PUBLISH_MANIFEST_VERSION,
        state_name=states.RECALL_PROGRESS_OF_LAST_PUBLISHED_VERSION,
        payload={**iteration_fields, "execution_name.$": "$$.Execution.Name"},
        result_path="$.progress",
    )
    is_resumed = (
        sfn.Choice(scope, states.IS_RESUMED_RUN)
        .when(
            sfn.Condition.and_(sfn.Condition.is_present("$.resume_from"), sfn.Condition.is_numeric("$.resume_from")),
            resume,
        )
        .otherwise(register_pool)
    )
    resume.next(recall_progress)
    register_pool.next(select_wave)
    is_there_a_wave = (
        sfn.Choice(scope, states.IS_THERE_A_WAVE_FOR_PEOPLE)
        .when(sfn.Condition.number_greater_than("$.human_batch.task_count", 0), label_wave)
        .otherwise(publish)
    )
    select_wave.next(is_there_a_wave)
    check_quality.next(publish)

    has_previous_model = (
        sfn.Choice(scope, states.HAS_PREVIOUS_MODEL)
        .when(sfn.Condition.is_string("$.iteration.uris.warm_start"), train_warm)
        .otherwise(train_from_scratch)
    )
    is_people_only = (
        sfn.Choice(scope, states.IS_NEXT_ITERATION_FOR_PEOPLE_ONLY)
        .when(
            sfn.Condition.boolean_equals("$.progress.people_only", True),
            select_wave,
            comment="The initial sample is not all sent yet, or the loop stopped learning: people label a wave",
        )
        .otherwise(split)
    )
    add_new_arrivals.next(is_people_only)
    split.next(choose_images_to_infer)
    choose_images_to_infer.next(has_previous_model)
    train_warm.next(create_model)
    train_from_scratch.next(create_model)
    create_model.next(run_inference)
    run_inference.next(compute_threshold)
    compute_threshold.next(route)
    route.next(select_for_humans)
    are_there_tasks = (
        sfn.Choice(scope, states.ARE_THERE_IMAGES_FOR_HUMANS)
        .when(sfn.Condition.number_greater_than("$.human_batch.task_count", 0), label_uncertain)
        .otherwise(publish)
    )
    select_for_humans.next(are_there_tasks)

    run_succeeded = sfn.Succeed(scope, states.RUN_SUCCEEDED)
    finalize.next(run_succeeded)
    is_done = (
        sfn.Choice(scope, states.IS_LABELLING_DONE)
        .when(
            sfn.Condition.boolean_equals("$.progress.pool_labelled", True),
            finalize,
            comment="Every pool image is labelled",
        )
        .when(
            sfn.Condition.boolean_equals("$.progress.budget_spent", True), finalize, comment="The human budget is spent"
        )
        .when(
            sfn.Condition.boolean_equals("$.progress.people_done", True),
            finalize,
            comment="A wave for people labelled nothing: none fitted the budget, none was left, or none came back",
        )
        .otherwise(add_new_arrivals)
    )
    publish.next(is_done)
    recall_progress.next(is_done)
    return is_resumed
