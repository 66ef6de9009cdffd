"""SelectWaveForPeople: the next wave people label without a model (DESIGN.md "The loop").

Reads the pool, the images already sent to people, the labelled images, the run's budget and its measured
answer seconds; ``boxloop.people_waves.plan_people_wave`` chooses the wave (the next images of the random
initial sample, or, once the loop stopped learning, unlabelled images) so that its expected seconds fit what
is left; writes the iteration's ``tasks.jsonl`` and ``selection.json``.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from boxloop.initial_sample import random_sample
from boxloop.people_waves import plan_people_wave
from lambdas.adapters.runs import answer_seconds, get_run_state
from lambdas.adapters.storage import write_document, write_jsonl
from lambdas.loop.events import IterationEvent
from lambdas.loop.run_data import initial_pool_shards, iter_pool, labelled_image_ids, read_run_config, task_ids_up_to
from lambdas.observability import lambda_handler, logger, metrics


def select_initial_sample(event: IterationEvent) -> dict:
    """Write the wave's ``tasks.jsonl`` and ``selection.json``; returns ``tasks_key``, ``task_count`` and ``purpose``."""
    layout = event.layout
    config = read_run_config(layout)
    state = get_run_state(event.run_id)
    if state is None:
        raise RuntimeError(f"run {event.run_id} has no state item: RegisterPool has not run")
    remaining = max(state.human_budget_seconds - state.human_seconds_used, 0.0)
    sent = task_ids_up_to(layout, event.iteration - 1) if event.iteration else set()
    tasks, record = plan_people_wave(
        initial_sample=random_sample(initial_pool_shards(layout), config.initial_sample_size, config.seed),
        pool=(record for _, records in iter_pool(layout) for record in records),
        sent_ids=sent,
        labelled_ids=labelled_image_ids(layout),
        config=config,
        iteration=event.iteration,
        remaining=remaining,
        answer_seconds=answer_seconds(event.run_id),
    )
    key = layout.tasks(event.iteration)
    write_jsonl(layout.bucket, key, (task.model_dump_json() for task in tasks))
    write_document(layout.bucket, layout.selection(event.iteration), record.model_dump_json(indent=1))
    metrics.add_metric(name="HumanTasks", unit=MetricUnit.Count, value=len(tasks))
    metrics.add_metric(name="EstimatedHumanSeconds", unit=MetricUnit.Seconds, value=record.estimated_seconds)
    result = {
        "tasks_key": key,
        "task_count": len(tasks),
        "purpose": record.purpose.value,
        "estimated_seconds": record.estimated_seconds,
        "remaining_budget_seconds": remaining,
        "waiting": record.waiting,
    }
    logger.info("drew a wave for people", extra=result)
    return result


@lambda_handler
@event_parser(model=IterationEvent)
def handler(event: IterationEvent, context: LambdaContext) -> dict:
    """Powertools entry point: see ``select_initial_sample``."""
    return select_initial_sample(event)
