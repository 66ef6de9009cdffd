"""What boxloop costs on AWS, from measured figures and public us-east-1 prices (not a test).

One script over 400 lines on purpose: each dated price sits beside the computation that uses it and the page it
comes from, so a reader checks a figure in one place.

Inputs (paths relative to the repository root):

- ``--efficiency`` (default ``docs/benchmarks/efficiency-mixed.json``, the mixed corpus's figures of record from
  ``bench/efficiency.py``; its measured run is the largest size's seed 0). Per policy: training seconds and
  pool-inference images per trained iteration, auto- and human-labelled images, human hours. ``boxloop`` is priced
  as a boxloop run, ``ground-truth-style`` as Ground Truth's automated labelling, ``all-manual`` as Ground Truth
  without it (``boxloop-human-parity`` is left out: its first model is boxloop's, shared and counted once).
  boxloop's batch transform is priced on the whole pool every trained iteration, as the deployed stack runs it; the
  Ground Truth-style policy's on the images it inferred.
- ``--usage`` (default ``docs/benchmarks/local-run-usage.json``, kept from a local run; every ``boxloop run``
  / ``make demo`` writes one to its output folder): a local run's ``usage.json``
  (``boxloop.local.usage``): Lambda invocations and GB-seconds per function, Step Functions state
  transitions, SQS messages, and the run's size. Its counts are scaled to the efficiency run's size:
  ingest by images; the human-answer Lambda by human-labelled images; ``RouteShard`` and the Distributed
  Map's child transitions by pool-inference images; the ingest queue by images; every other function,
  state transition and queue by iterations (iteration 0 included), with those functions' GB-seconds also
  growing with images (they read the pool).
- ``--inference-seconds-per-image`` (default 0.057): the detector's measured CPU time per pool image at
  the production size, 256 px, with the mirrored pass (``docs/benchmarks/detector-cpu.json``, Nov 30; 2 threads
  on a 2-core AMD EPYC; 0.147 on Nov 22, before the faster decoding), or ``--pool-inference REPORT``: one over
  the end-to-end images/s of a ``bench/pool_inference.py --output REPORT`` run (docs/benchmarks.md, "Pool
  inference throughput"; end to end is within the goals of the model-only rate, so the model's figure stands
  for it).
  The batch transform is priced on ``--transform-instance`` (default
  ml.c5.xlarge, the dev stack's) at that throughput, assuming the 2 measured cores ≈ its 4 vCPUs
  (2 physical cores). No GPU throughput was measured, so no GPU transform is priced.
- Training is priced as the measured seconds per trained iteration on ``--training-instance`` (default
  ml.g4dn.xlarge, the dev stack's; the stack accepts only GPU training instances). Training is step-bounded
  and the seconds were measured on 2 CPU cores, so a GPU runs the same steps in fewer: an upper bound.
  SageMaker's own job start-up (instance and image) is not in the measured seconds.
- ``--human-rate`` (default $15/h): what an hour of a labeller (private workforce) costs.

Outputs: dollars per 1,000 auto-labels for the measured run, by component, against the goal (compute ≤ $0.10 per
1,000 auto-labels); a projected ``--images`` (default 500,000) run per policy: compute, per-object fees (tiered
Ground Truth fee on every labelled object, automatic or human; A2I's fee on every human-labelled object for
boxloop, whose human tasks are A2I human loops) and human hours × rate. Compute is linear in images from the
measured run. Human hours are the efficiency benchmark's own projection when the file has one for every priced
policy at ``--images`` (multi-seed results: the mean over seeds; the human-labelled images follow at the
measured run's images per hour), else linear too; the tiered fees are computed on the projected counts.
``--json OUT`` writes the figures; ``--plot`` (default ``docs/benchmarks/cost.png``) the projected cost by policy
and component.

    .venv/bin/python bench/cost.py [--efficiency PATH] [--usage PATH] [--json OUT] [--plot PNG]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from pydantic import BaseModel

from boxloop.local.usage import LambdaFunctionUsage, RunUsage

PROJECT_ROOT = Path(__file__).resolve().parents[1]

PRICES_TAKEN = "2026-11-22"
REGION = "us-east-1"
GOAL_PER_1000_AUTO_LABELS = 0.10
SQS_REQUESTS_PER_MESSAGE = 3
"""Send, receive and delete: an upper bound (event-source receives take up to 10 messages at once)."""


@dataclass(frozen=True)
class Price:
    """A public on-demand price in US dollars per ``unit`` (us-east-1, taken ``PRICES_TAKEN``)."""

    usd: float
    unit: str
    source: str
    verified: bool
    """True when the figure was read in the stored copy of ``source``; False: from memory, check it."""


INSTANCE_HOUR = {
    # SageMaker training and batch transform, on-demand: the stored copies of AWS's page have no figures.
    "ml.c5.xlarge": Price(0.204, "instance-hour", "https://aws.amazon.com/sagemaker/pricing/", False),
    "ml.g4dn.xlarge": Price(0.736, "instance-hour", "https://aws.amazon.com/sagemaker/pricing/", False),
}
LAMBDA_REQUEST = Price(
    0.20 / 1e6, "request", "https://docs.aws.amazon.com/whitepapers/latest/how-aws-pricing-works/lambda.html", True
)
LAMBDA_GB_SECOND = Price(
    0.0000166667,
    "GB-second (x86, first 6 billion GB-s a month)",
    "https://aws.amazon.com/lambda/pricing/ (figure as quoted for us-east-1 by "
    "https://cloudchipr.com/blog/aws-lambda-pricing; AWS's pricing whitepaper rounds it to $0.00001667)",
    True,
)
STATE_TRANSITION = Price(
    0.025 / 1000, "state transition (Standard workflows)", "https://aws.amazon.com/step-functions/pricing/", True
)
SQS_REQUEST = Price(
    0.40 / 1e6,
    "request (standard queue)",
    "https://aws.amazon.com/sqs/pricing/ (figure as stated for us-east-1, March 2026, by "
    "https://cloudburn.io/blog/amazon-sqs-pricing)",
    True,
)
S3_PUT = Price(
    0.005 / 1000,
    "PUT/COPY/POST/LIST request (S3 Standard)",
    "https://aws.amazon.com/s3/pricing/ (figure as stated by https://c3x.dev/blog/s3-request-fees-explained)",
    True,
)
S3_GET = Price(0.0004 / 1000, "GET/HEAD request (S3 Standard)", S3_PUT.source, True)
GROUND_TRUTH_SOURCE = (
    "https://aws.amazon.com/sagemaker/groundtruth/pricing/ (the stored Chinese copy, aws.amazon.com/cn/…, says every "
    "labelled object is charged whether Ground Truth's automated labelling or a person labelled it, with no extra "
    "per-object charge for a private workforce; its price table is not in the stored copy)"
)
GROUND_TRUTH_TIERS: tuple[tuple[int | None, Price], ...] = (
    (50_000, Price(0.08, "labelled object, first 50,000 a month", GROUND_TRUTH_SOURCE, False)),
    (950_000, Price(0.04, "labelled object, next 950,000 a month", GROUND_TRUTH_SOURCE, False)),
    (None, Price(0.02, "labelled object, over 1,000,000 a month", GROUND_TRUTH_SOURCE, False)),
)
A2I_OBJECT = Price(
    0.08,
    "object reviewed by a person (custom workflow)",
    "https://aws.amazon.com/augmented-ai/pricing/ (the stored Vietnamese and Spanish copies say each object a person "
    "reviews is charged, with no extra per-object charge for your own workforce; the figure is not in them)",
    False,
)
NOTES = [
    "Batch transform: priced on the transform instance at the measured CPU throughput (--inference-seconds-per-image, "
    "measured on 2 AMD EPYC cores, taken as ml.c5.xlarge's 4 vCPUs = 2 physical cores). No GPU transform is priced: "
    "no GPU throughput was measured.",
    "Training: the measured seconds per trained iteration on the training instance; training is step-bounded and "
    "the seconds are 2 CPU cores', so a GPU runs the same steps in fewer: an upper bound.",
    "Ground Truth's automated labelling also runs SageMaker training and inference jobs, charged as SageMaker usage "
    "(AWS's Ground Truth documentation; not verified in the stored pages): priced here like boxloop's, from the "
    "Ground Truth-style policy's measured training seconds and inference images.",
    "Not counted: the human-review consumer Lambda (not run locally; one invocation per human batch), DynamoDB, "
    "S3 storage and data transfer, CloudWatch, SageMaker job start-up, free tiers.",
    "S3 requests are estimated from image counts, not measured: one GET per image at ingest, per image per pool "
    "inference and per training image per training job; two PUTs per human-labelled image (A2I output, accepted "
    "label); manifest shards, pool shards and job outputs (a few objects per shard and iteration) are left out.",
    "Ground Truth's tiers are monthly: the projection assumes the whole run falls in one month.",
]


# ------------------------------------------------------------------------------------------ inputs


class IterationFigures(BaseModel):
    """One trained iteration of a policy in ``efficiency.json``."""

    iteration: int
    train_images: int
    train_seconds: float
    inference_images: int


class PolicyFigures(BaseModel):
    """One policy of ``efficiency.json`` (the fields the cost model reads)."""

    name: str
    human_hours: float
    human_images: int
    auto_images: int
    trained_iterations: int
    iterations: list[IterationFigures]


class CorpusFigures(BaseModel):
    images: int


class ProjectedHours(BaseModel):
    mean: float


class PolicyProjection(BaseModel):
    """One policy's human hours as ``bench/efficiency.py`` projects them (mean and range over seeds)."""

    hours: ProjectedHours


class EfficiencySummary(BaseModel):
    projection: dict[str, PolicyProjection] = {}


class EfficiencyResult(BaseModel):
    """``efficiency.json`` as written by ``bench/efficiency.py`` (the fields the cost model reads). A multi-seed
    results file also carries the benchmark's own projection of human hours to ``projection_images``."""

    date: str
    machine: str
    command: str
    corpus: CorpusFigures
    policies: list[PolicyFigures]
    projection_images: int | None = None
    summary: EfficiencySummary | None = None

    def projected_hours(self, name: str, images: int) -> float | None:
        """The benchmark's projected human hours of policy ``name`` at ``images`` (mean over seeds), or None
        when it projected to another size or not at all."""
        if self.summary is None or self.projection_images != images or name not in self.summary.projection:
            return None
        return self.summary.projection[name].hours.mean

    def policy(self, name: str) -> PolicyFigures:
        for policy in self.policies:
            if policy.name == name:
                return policy
        raise ValueError(f"efficiency.json has no policy {name!r} (it has {[p.name for p in self.policies]})")


@dataclass(frozen=True)
class RunShape:
    """The sizes usage scales with."""

    images: int
    iterations: int
    """Iterations including iteration 0 (the initial human sample)."""
    human_images: int
    inference_images: int
    """Pool images run through inference, all iterations together."""

    @classmethod
    def of_usage(cls, usage: RunUsage) -> RunShape:
        if usage.images_total is None or usage.iterations is None or usage.images_human_labelled is None:
            raise ValueError("usage.json has no run size (images_total, iterations): use one from a run that finished")
        records = sum(job.input_records or 0 for job in usage.transform_jobs)
        return cls(usage.images_total, usage.iterations, usage.images_human_labelled, records)

    @classmethod
    def of_policy(cls, policy: PolicyFigures, images: int) -> RunShape:
        inference = sum(iteration.inference_images for iteration in policy.iterations)
        return cls(images, policy.trained_iterations + 1, policy.human_images, inference)


def _ratio(target: RunShape, measured: RunShape, driver: str) -> float:
    measured_value = getattr(measured, driver)
    if measured_value <= 0:
        raise ValueError(f"usage.json's run has no {driver.replace('_', ' ')}: cannot scale counts that grow with them")
    return getattr(target, driver) / measured_value


# ------------------------------------------------------------------------------------------ the model

LAMBDA_DRIVERS = {
    "lambdas.ingest.handler.handler": "images",
    "lambdas.human_review.answer.handler": "human_images",
    "lambdas.loop.route_shard.handler": "inference_images",
}
"""Functions invoked per image, per human answer or per pool shard; every other one runs per iteration."""
INGEST_QUEUE_PREFIX = "Ingest"


def scaled_lambda(function: LambdaFunctionUsage, measured: RunShape, target: RunShape) -> tuple[float, float]:
    """(invocations, GB-seconds) of ``function`` in a run of ``target``'s shape."""
    driver = LAMBDA_DRIVERS.get(function.handler)
    if driver is not None:
        ratio = _ratio(target, measured, driver)
        return function.invocations * ratio, function.gb_seconds * ratio
    per_iteration = _ratio(target, measured, "iterations")
    return function.invocations * per_iteration, function.gb_seconds * per_iteration * _ratio(
        target, measured, "images"
    )


def ground_truth_fee(objects: float) -> float:
    """Ground Truth's per-object fee for ``objects`` labelled objects in one month (tiered)."""
    fee, left = 0.0, objects
    for size, price in GROUND_TRUTH_TIERS:
        in_tier = left if size is None else min(left, size)
        fee += in_tier * price.usd
        left -= in_tier
    return fee


@dataclass(frozen=True)
class ComputeCost:
    """Dollars of one run's AWS compute, by component."""

    training: float
    transform: float
    lambda_requests: float
    lambda_duration: float
    step_functions: float
    sqs: float
    s3_requests: float

    @property
    def total(self) -> float:
        return sum(asdict(self).values())

    def scaled(self, factor: float) -> ComputeCost:
        return ComputeCost(**{name: value * factor for name, value in asdict(self).items()})


@dataclass(frozen=True)
class CostInputs:
    """What the model reads besides the figures: instance types and throughput."""

    training_instance: str = "ml.g4dn.xlarge"
    transform_instance: str = "ml.c5.xlarge"
    inference_seconds_per_image: float = 0.057


def sagemaker_cost(policy: PolicyFigures, inputs: CostInputs, inference_images: int) -> tuple[float, float]:
    """(training, transform) dollars of ``policy``'s measured run with ``inference_images`` pool predictions."""
    training_seconds = sum(iteration.train_seconds for iteration in policy.iterations)
    transform_seconds = inference_images * inputs.inference_seconds_per_image
    return (
        training_seconds / 3600 * INSTANCE_HOUR[inputs.training_instance].usd,
        transform_seconds / 3600 * INSTANCE_HOUR[inputs.transform_instance].usd,
    )


def s3_request_cost(policy: PolicyFigures, images: int) -> float:
    """The estimated S3 request dollars of ``policy``'s run (see ``NOTES``)."""
    gets = images + sum(iteration.inference_images + iteration.train_images for iteration in policy.iterations)
    return gets * S3_GET.usd + 2 * policy.human_images * S3_PUT.usd


def boxloop_compute(policy: PolicyFigures, images: int, usage: RunUsage, inputs: CostInputs) -> ComputeCost:
    """A boxloop run's compute dollars: SageMaker and S3 from ``policy``'s figures, Lambda / Step Functions / SQS
    scaled from ``usage``."""
    measured, target = RunShape.of_usage(usage), RunShape.of_policy(policy, images)
    invocations = gb_seconds = 0.0
    for function in usage.lambda_functions:
        function_invocations, function_gb_seconds = scaled_lambda(function, measured, target)
        invocations += function_invocations
        gb_seconds += function_gb_seconds
    step_functions = usage.step_functions
    transitions = step_functions.map_child_transitions * _ratio(target, measured, "inference_images") + (
        step_functions.state_transitions - step_functions.map_child_transitions
    ) * _ratio(target, measured, "iterations")
    messages = sum(
        count * _ratio(target, measured, "images" if queue.startswith(INGEST_QUEUE_PREFIX) else "iterations")
        for queue, count in usage.sqs_messages_sent.items()
    )
    # the deployed stack's RunPoolInference reads the whole pool every trained iteration (the benchmark
    # harness infers only unlabelled and validation images), so the stack's transform is priced on that
    training, transform = sagemaker_cost(policy, inputs, images * policy.trained_iterations)
    return ComputeCost(
        training=training,
        transform=transform,
        lambda_requests=invocations * LAMBDA_REQUEST.usd,
        lambda_duration=gb_seconds * LAMBDA_GB_SECOND.usd,
        step_functions=transitions * STATE_TRANSITION.usd,
        sqs=messages * SQS_REQUESTS_PER_MESSAGE * SQS_REQUEST.usd,
        s3_requests=s3_request_cost(policy, images),
    )


def ground_truth_compute(policy: PolicyFigures, images: int, inputs: CostInputs) -> ComputeCost:
    """Ground Truth's automated labelling: its training and inference jobs (its orchestration is in its fee)."""
    measured_inference = sum(iteration.inference_images for iteration in policy.iterations)
    training, transform = sagemaker_cost(policy, inputs, measured_inference)
    return ComputeCost(training, transform, 0.0, 0.0, 0.0, 0.0, s3_request_cost(policy, images))


LABELLED_BY = {
    "boxloop": "boxloop (human tasks as A2I human loops)",
    "ground-truth-style": "Ground Truth with automated labelling",
    "all-manual": "Ground Truth, every image by people",
}
"""How each policy of ``efficiency.json`` is priced, in the order it is shown."""


@dataclass(frozen=True)
class Projection:
    """One policy's projected run: compute, per-object fees and human labour, in dollars."""

    policy: str
    labelled_by: str
    images: int
    human_images: float
    human_hours: float
    compute: float
    object_fees: float
    human_labour: float

    @property
    def total(self) -> float:
        return self.compute + self.object_fees + self.human_labour


def project(
    policy: PolicyFigures,
    compute: ComputeCost,
    measured_images: int,
    images: int,
    human_rate: float,
    projected_hours: float | None = None,
) -> Projection:
    """``policy``'s measured run scaled to ``images`` (linearly); the per-object fees on the projected counts
    (A2I's on boxloop's human-labelled images, Ground Truth's tiered fee on every image otherwise).

    With ``projected_hours`` (the efficiency benchmark's own projection), those are the human hours, and the
    human-labelled images follow at the measured run's images per human hour."""
    factor = images / measured_images
    if projected_hours is None:
        human_hours, human_images = policy.human_hours * factor, policy.human_images * factor
    else:
        per_hour = policy.human_images / policy.human_hours if policy.human_hours > 0 else 0.0
        human_hours, human_images = projected_hours, min(float(images), projected_hours * per_hour)
    is_boxloop = policy.name == "boxloop"
    return Projection(
        policy=policy.name,
        labelled_by=LABELLED_BY[policy.name],
        images=images,
        human_images=human_images,
        human_hours=human_hours,
        compute=compute.scaled(factor).total,
        object_fees=human_images * A2I_OBJECT.usd if is_boxloop else ground_truth_fee(images),
        human_labour=human_hours * human_rate,
    )


def policy_compute(policy: PolicyFigures, images: int, usage: RunUsage, inputs: CostInputs) -> ComputeCost:
    """A policy's measured run's compute dollars, priced as ``LABELLED_BY`` says."""
    if policy.name == "boxloop":
        return boxloop_compute(policy, images, usage, inputs)
    return ground_truth_compute(policy, images, inputs)


# ------------------------------------------------------------------------------------------ output


def _prices(inputs: CostInputs) -> dict[str, dict]:
    named = {
        f"sagemaker {inputs.training_instance} (training)": INSTANCE_HOUR[inputs.training_instance],
        f"sagemaker {inputs.transform_instance} (batch transform)": INSTANCE_HOUR[inputs.transform_instance],
        "lambda request": LAMBDA_REQUEST,
        "lambda duration": LAMBDA_GB_SECOND,
        "step functions": STATE_TRANSITION,
        "sqs": SQS_REQUEST,
        "s3 put": S3_PUT,
        "s3 get": S3_GET,
        **{f"ground truth tier {index}": price for index, (_, price) in enumerate(GROUND_TRUTH_TIERS, start=1)},
        "a2i": A2I_OBJECT,
    }
    return {name: asdict(price) for name, price in named.items()}


def _price_line(name: str, price: dict) -> str:
    check = "" if price["verified"] else "  [not verified in the stored pages]"
    return f"  {name:42s} ${price['usd']:.10f}".rstrip("0") + f" per {price['unit']}{check}"


def plot(projections: list[dict], path: Path, images: int, human_hours_projected: bool) -> None:
    """Stacked bars: each policy's projected cost (``cost_report``'s projections) by component."""
    figure = Figure(figsize=(8, 4.5))
    FigureCanvasAgg(figure)
    axis = figure.subplots()
    names = [projection["policy"] for projection in projections]
    bottom = [0.0] * len(projections)
    for key, label, colour in (
        ("compute", "AWS compute", "#4c72b0"),
        ("object_fees", "per-object fees (Ground Truth / A2I)", "#dd8452"),
        ("human_labour", "human labour", "#55a868"),
    ):
        values = [projection[key] for projection in projections]
        axis.bar(names, values, bottom=bottom, label=label, color=colour)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    for index, projection in enumerate(projections):
        label = f"${projection['total']:,.0f}\n(compute ${projection['compute']:,.2f})"
        axis.annotate(label, (index, projection["total"]), ha="center", va="bottom", fontsize=8)
    axis.yaxis.set_major_formatter(lambda value, _: f"{value:,.0f}")
    axis.margins(y=0.12)
    axis.set_ylabel("US dollars")
    how = (
        "human hours as the efficiency benchmark projects them, compute linear"
        if human_hours_projected
        else "linear in images from the measured run"
    )
    axis.set_title(f"Projected cost of labelling {images:,} images\n({how})", fontsize=10)
    axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def cost_report(
    efficiency: EfficiencyResult, usage: RunUsage, inputs: CostInputs, images: int, human_rate: float
) -> dict:
    """Every figure the script prints, as a JSON-ready dict."""
    measured_images = efficiency.corpus.images
    boxloop = efficiency.policy("boxloop")
    compute = boxloop_compute(boxloop, measured_images, usage, inputs)
    per_1000 = {name: value / boxloop.auto_images * 1000 for name, value in asdict(compute).items()}
    per_1000_total = compute.total / boxloop.auto_images * 1000
    priced = [policy for name in LABELLED_BY for policy in efficiency.policies if policy.name == name]
    projected = {policy.name: efficiency.projected_hours(policy.name, images) for policy in priced}
    hours_projected = all(hours is not None for hours in projected.values())
    if not hours_projected:  # every policy's hours come the same way, or the comparison is not like for like
        projected = dict.fromkeys(projected)
    projections = [
        project(
            policy,
            policy_compute(policy, measured_images, usage, inputs),
            measured_images,
            images,
            human_rate,
            projected[policy.name],
        )
        for policy in priced
    ]
    hours_from = (
        "human hours from the efficiency benchmark's own projection (mean over seeds), human-labelled images at "
        "the measured images per hour"
        if hours_projected
        else "human hours linear in images from the measured run"
    )
    return {
        "benchmark": "cost",
        "prices_taken": PRICES_TAKEN,
        "region": REGION,
        "inputs": {
            "efficiency": {"date": efficiency.date, "machine": efficiency.machine, "command": efficiency.command},
            "usage_run": {"run_id": usage.run_id, **asdict(RunShape.of_usage(usage))},
            **asdict(inputs),
            "human_rate_per_hour": human_rate,
            "projected_images": images,
        },
        "prices": _prices(inputs),
        "measured_run": {
            "images": measured_images,
            "auto_labels": boxloop.auto_images,
            "compute": asdict(compute),
            "compute_total": compute.total,
            "per_1000_auto_labels": per_1000,
            "per_1000_auto_labels_total": per_1000_total,
            "goal_per_1000_auto_labels": GOAL_PER_1000_AUTO_LABELS,
            "goal_met": per_1000_total <= GOAL_PER_1000_AUTO_LABELS,
        },
        "projections": [{**asdict(p), "total": p.total} for p in projections],
        "human_hours_projected": hours_projected,
        "scaling": f"a projection: {hours_from}; compute linear in images from the measured run; Ground Truth's "
        "tiered fee on the projected count",
        "notes": NOTES,
    }


def print_report(report: dict) -> None:
    measured = report["measured_run"]
    print(f"Prices: {report['region']}, taken {report['prices_taken']}")
    source = None
    for name, price in report["prices"].items():
        print(_price_line(name, price))
        if price["source"] != source:
            source = price["source"]
            print(f"      {source}")
    shape = report["inputs"]["usage_run"]
    print(
        f"\nLambda / Step Functions / SQS counts from local run {shape['run_id']} ({shape['images']:,} images, "
        f"{shape['iterations']} iterations), scaled to the measured run: per image, per human answer, per pool-"
        "inference image or per iteration (see the module docstring)."
    )
    print(f"\nMeasured run: {measured['images']:,} images, {measured['auto_labels']:,} auto-labels")
    print(f"  {'component':18s} {'dollars':>10s} {'per 1,000 auto-labels':>22s}")
    for name, value in measured["compute"].items():
        print(f"  {name:18s} {value:10.4f} {measured['per_1000_auto_labels'][name]:22.5f}")
    print(f"  {'total':18s} {measured['compute_total']:10.4f} {measured['per_1000_auto_labels_total']:22.5f}")
    verdict = "met" if measured["goal_met"] else "MISSED"
    print(
        f"Goal: compute ≤ ${measured['goal_per_1000_auto_labels']:.2f} per 1,000 auto-labels — {verdict} "
        f"(${measured['per_1000_auto_labels_total']:.4f})"
    )
    print(f"\nProjected {report['inputs']['projected_images']:,}-image run ({report['scaling']}):")
    print(
        f"  {'policy':22s} {'human h':>9s} {'compute':>10s} {'fees':>10s} {'labour':>11s} {'total':>11s}  labelled by"
    )
    for p in report["projections"]:
        print(
            f"  {p['policy']:22s} {p['human_hours']:9,.0f} {p['compute']:10,.2f} {p['object_fees']:10,.2f} "
            f"{p['human_labour']:11,.2f} {p['total']:11,.2f}  {p['labelled_by']}"
        )
    print(f"  (human labour at ${report['inputs']['human_rate_per_hour']:.2f}/h)")
    for note in report["notes"]:
        print(f"- {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--efficiency", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks" / "efficiency-mixed.json"
    )
    parser.add_argument("--usage", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks" / "local-run-usage.json")
    parser.add_argument("--inference-seconds-per-image", type=float, default=CostInputs.inference_seconds_per_image)
    parser.add_argument("--pool-inference", type=Path, help="a bench/pool_inference.py report: its end-to-end rate")
    parser.add_argument("--training-instance", choices=sorted(INSTANCE_HOUR), default=CostInputs.training_instance)
    parser.add_argument("--transform-instance", choices=sorted(INSTANCE_HOUR), default=CostInputs.transform_instance)
    parser.add_argument("--human-rate", type=float, default=15.0, help="US dollars per labeller hour (default 15)")
    parser.add_argument("--images", type=int, default=500_000, help="projected run size (default 500,000)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--plot", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks" / "cost.png")
    args = parser.parse_args(argv)
    for path, how in (
        (args.efficiency, "bench/efficiency.py"),
        (args.usage, "a finished `boxloop demo` or `boxloop run`"),
    ):
        if not path.is_file():
            parser.error(f"{path} does not exist: it is written by {how}")
    efficiency = EfficiencyResult.model_validate_json(args.efficiency.read_bytes())
    usage = RunUsage.model_validate_json(args.usage.read_bytes())
    seconds_per_image = args.inference_seconds_per_image
    if args.pool_inference:
        measured = json.loads(args.pool_inference.read_text())
        seconds_per_image = 1.0 / measured["images_per_second"]["end_to_end"]
        print(f"pool inference: {seconds_per_image:.4f} s per image, measured on {measured['machine']}")
    inputs = CostInputs(args.training_instance, args.transform_instance, seconds_per_image)
    report = cost_report(efficiency, usage, inputs, args.images, args.human_rate)
    print_report(report)
    plot(report["projections"], args.plot, args.images, report["human_hours_projected"])
    print(f"\nplot: {args.plot}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
        print(f"figures: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
