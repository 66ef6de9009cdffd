"""The run report: ``report.json`` for scripts and a self-contained ``report.html`` for people.

The report states the quality guarantee for all auto-labels of a run together
and the human time spent. Per-iteration statements (``boxloop.threshold``)
each hold with probability at least 1 - delta_i; the run's statement is the
count-weighted mean of the per-iteration lower bounds, which holds with
probability at least 1 - sum(delta_i) over the iterations that auto-labelled
images (union bound). The HTML opens from disk with no network: plots are
inline PNG, gallery thumbnails inline JPEG.
"""

from __future__ import annotations

import base64
import html
import io
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict

from boxloop.config import LabelingConfig
from boxloop.models import Box, IterationMetrics, LabelRecord, LabelSource
from boxloop.quality import image_miou
from boxloop.threshold import ThresholdCurvePoint

THUMBNAIL_MAX_SIDE = 320
MAX_CURVE_PANELS = 12
_CLASS_COLOURS = [tuple(round(255 * channel) for channel in rgb) for rgb in matplotlib.colormaps["tab10"].colors]


class IterationSummary(BaseModel):
    """One iteration's figures as the report shows them."""

    model_config = ConfigDict(frozen=True)

    iteration: int
    threshold: float | None
    lower_bound: float | None
    target: float | None
    delta: float | None
    n_validation: int | None
    n_validation_above: int | None
    images_in_pool: int
    auto_labelled: int
    human_labelled: int
    audit_labelled: int
    rejected_by_qc: int
    unanswered: int
    unlabelled_remaining: int
    human_seconds: float
    human_seconds_total: float
    validation_miou: float | None
    validation_map50: float | None
    audit_miou: float | None
    auto_in_manifest: int
    auto_miou_true: float | None
    statement: str | None


class GalleryImage(BaseModel):
    """A thumbnail with its boxes drawn, for the report's gallery."""

    model_config = ConfigDict(frozen=True)

    image_id: str
    label_source: LabelSource
    iteration: int
    image_confidence: float | None
    box_count: int
    class_names: list[str]
    jpeg_base64: str


class RunReport(BaseModel):
    """A run's outcome: counts, human time, the guarantee, per-iteration figures, plots' data, gallery."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    generated_at: datetime
    images_total: int
    images_auto_labelled: int
    images_human_labelled: int
    images_unlabelled: int
    human_seconds: float
    human_budget_seconds: float
    iterations: int
    target_miou: float
    delta: float
    auto_miou_lower_bound: float | None
    auto_miou_confidence: float | None
    auto_miou_true: float | None
    human_miou_true: float | None
    statement: str
    per_iteration: list[IterationSummary]
    threshold_curves: dict[int, list[ThresholdCurvePoint]]
    gallery: list[GalleryImage]

    def to_json(self) -> dict:
        """The figures as a JSON-ready dict (``report.json``); curves and thumbnails are left to the HTML."""
        return self.model_dump(mode="json", exclude={"threshold_curves", "gallery"})

    def to_html(self) -> str:
        """A single self-contained HTML page (``report.html``) that needs no network to open."""
        return _render_html(self)


@dataclass
class _QualityTally:
    """Count of images and, where truth is known, the sum of their quality."""

    count: int = 0
    quality_sum: float = 0.0

    def add(self, quality: float | None) -> None:
        self.count += 1
        if quality is not None:
            self.quality_sum += quality

    def mean(self) -> float | None:
        return self.quality_sum / self.count if self.count else None


def build_report(
    run_id: str,
    config: LabelingConfig,
    iterations: Sequence[IterationMetrics],
    records: Iterable[LabelRecord],
    threshold_curves: Mapping[int, Sequence[ThresholdCurvePoint]] | None = None,
    truth: Mapping[str, Sequence[Box]] | None = None,
    gallery: Sequence[tuple[LabelRecord, bytes]] = (),
    images_total: int | None = None,
) -> RunReport:
    """Summarise a run from its iteration metrics and its final manifest's records.

    ``records`` (one per labelled image) is streamed once, keeping only counts
    and sums. ``truth`` (image id to reference boxes, known for generated
    corpora) adds the realised mean IoU of auto- and human-labelled images;
    every labelled image must then have a reference. ``gallery`` pairs records
    with their image bytes for thumbnails (see ``gallery_candidates``).
    ``images_total`` defaults to the labelled images plus the last
    iteration's ``unlabelled_remaining``. Raises ValueError on inconsistent
    input, naming the iteration or image.
    """
    ordered = _ordered_iterations(run_id, iterations)
    curves = {int(iteration): list(points) for iteration, points in (threshold_curves or {}).items()}
    unknown_curves = sorted(set(curves) - set(ordered))
    if unknown_curves:
        raise ValueError(f"threshold_curves for iterations without metrics: {unknown_curves}")

    auto_by_iteration: dict[int, _QualityTally] = {}
    human = _QualityTally()
    for record in records:
        quality = _true_quality(record, truth)
        if record.label_source is LabelSource.AUTO:
            if record.iteration not in ordered:
                raise ValueError(
                    f"record {record.image_id}: auto-labelled in iteration {record.iteration}, which has no metrics"
                )
            auto_by_iteration.setdefault(record.iteration, _QualityTally()).add(quality)
        else:
            human.add(quality)

    for iteration, tally in auto_by_iteration.items():
        stated = ordered[iteration].threshold
        if stated is None or stated.lower_bound is None:
            raise ValueError(
                f"iteration {iteration}: {tally.count} auto-labelled records, but its metrics state no lower bound"
            )

    auto_count = sum(tally.count for tally in auto_by_iteration.values())
    last = ordered[max(ordered)] if ordered else None
    if images_total is None:
        images_unlabelled = last.unlabelled_remaining if last else 0
        images_total = auto_count + human.count + images_unlabelled
    else:
        images_unlabelled = images_total - auto_count - human.count
        if images_unlabelled < 0:
            raise ValueError(
                f"images_total {images_total} is less than the {auto_count + human.count} labelled records"
            )

    lower_bound, confidence = _combined_bound(ordered, auto_by_iteration)
    auto_true = _pooled_mean(auto_by_iteration.values()) if truth is not None else None
    human_true = human.mean() if truth is not None else None
    human_seconds = last.human_seconds_total if last else 0.0
    return RunReport(
        run_id=run_id,
        generated_at=datetime.now(UTC),
        images_total=images_total,
        images_auto_labelled=auto_count,
        images_human_labelled=human.count,
        images_unlabelled=images_unlabelled,
        human_seconds=human_seconds,
        human_budget_seconds=config.human_budget_seconds,
        iterations=len(ordered),
        target_miou=config.quality.target_miou,
        delta=config.quality.delta,
        auto_miou_lower_bound=lower_bound,
        auto_miou_confidence=confidence,
        auto_miou_true=auto_true,
        human_miou_true=human_true,
        statement=_statement(
            auto_count,
            human.count,
            images_unlabelled,
            lower_bound,
            confidence,
            deltas=[ordered[iteration].threshold.delta for iteration in sorted(auto_by_iteration)],
            target=config.quality.target_miou,
            human_seconds=human_seconds,
            budget_seconds=config.human_budget_seconds,
        ),
        per_iteration=[
            _iteration_summary(metrics, auto_by_iteration.get(iteration), truth is not None)
            for iteration, metrics in ordered.items()
        ],
        threshold_curves=curves,
        gallery=[_thumbnail(record, data) for record, data in gallery],
    )


def gallery_candidates(records: Iterable[LabelRecord], per_source: int = 6, seed: int = 0) -> list[LabelRecord]:
    """A seeded random sample of up to ``per_source`` auto-labelled and as many human-labelled records.

    Streams ``records`` once with reservoir sampling, so memory stays bounded;
    the caller fetches these images' bytes for ``build_report(gallery=...)``.
    Audit labels count as human-labelled.
    """
    rng = random.Random(seed)
    reservoirs: dict[bool, list[LabelRecord]] = {True: [], False: []}
    seen = {True: 0, False: 0}
    for record in records:
        is_auto = record.label_source is LabelSource.AUTO
        seen[is_auto] += 1
        reservoir = reservoirs[is_auto]
        if len(reservoir) < per_source:
            reservoir.append(record)
        else:
            slot = rng.randrange(seen[is_auto])
            if slot < per_source:
                reservoir[slot] = record
    return reservoirs[True] + reservoirs[False]


def _ordered_iterations(run_id: str, iterations: Sequence[IterationMetrics]) -> dict[int, IterationMetrics]:
    ordered: dict[int, IterationMetrics] = {}
    for metrics in iterations:
        if metrics.run_id != run_id:
            raise ValueError(f"iteration {metrics.iteration}: metrics are for run {metrics.run_id!r}, not {run_id!r}")
        if metrics.iteration in ordered:
            raise ValueError(f"iteration {metrics.iteration}: metrics given twice")
        ordered[metrics.iteration] = metrics
    return dict(sorted(ordered.items()))


def _true_quality(record: LabelRecord, truth: Mapping[str, Sequence[Box]] | None) -> float | None:
    if truth is None:
        return None
    if record.image_id not in truth:
        raise ValueError(f"record {record.image_id}: no reference boxes in truth")
    return image_miou(record.boxes, truth[record.image_id])


def _pooled_mean(tallies: Iterable[_QualityTally]) -> float | None:
    tallies = list(tallies)
    count = sum(tally.count for tally in tallies)
    return sum(tally.quality_sum for tally in tallies) / count if count else None


def _combined_bound(
    ordered: Mapping[int, IterationMetrics], auto_by_iteration: Mapping[int, _QualityTally]
) -> tuple[float | None, float | None]:
    """Count-weighted mean of per-iteration lower bounds and its confidence 1 - sum(delta) (union bound).

    None for both when nothing was auto-labelled or the deltas sum to 1 or more.
    """
    total = sum(tally.count for tally in auto_by_iteration.values())
    if total == 0:
        return None, None
    stated = {iteration: ordered[iteration].threshold for iteration in auto_by_iteration}
    confidence = 1.0 - sum(summary.delta for summary in stated.values())
    if confidence <= 0.0:
        return None, None
    weighted = sum(stated[iteration].lower_bound * tally.count for iteration, tally in auto_by_iteration.items())
    return weighted / total, confidence


def _floor_hundredths(value: float) -> str:
    """A bound shown to two decimals, rounded down so it never overstates."""
    return f"{math.floor(value * 100 + 1e-9) / 100:.2f}"


def _percent(value: float) -> str:
    """A confidence as a percentage, rounded down so it never overstates."""
    return f"{math.floor(value * 1000 + 1e-9) / 10:g}%"


def _statement(
    auto_count: int,
    human_count: int,
    unlabelled: int,
    lower_bound: float | None,
    confidence: float | None,
    *,
    deltas: Sequence[float],
    target: float,
    human_seconds: float,
    budget_seconds: float,
) -> str:
    """The plain-language guarantee for the whole run."""
    people = (
        f"People labelled {human_count:,} images in {human_seconds / 3600:.1f} of the "
        f"{budget_seconds / 3600:.1f} budgeted hours; {unlabelled:,} images remain unlabelled."
    )
    if auto_count == 0:
        return f"No image was auto-labelled: every label was drawn by people. {people}"
    if lower_bound is None:
        return (
            f"{auto_count:,} images were auto-labelled over {len(deltas)} iterations, each with its own "
            f"per-iteration guarantee; their confidence levels are too low to combine into one statement "
            f"(the per-iteration δ sum to 1 or more). {people}"
        )
    iterations = "1 iteration" if len(deltas) == 1 else f"{len(deltas)} iterations"
    each = f"δ = {deltas[0]:g} each" if len(set(deltas)) == 1 else "δ = " + ", ".join(f"{d:g}" for d in deltas)
    return (
        f"With at least {_percent(confidence)} confidence, the mean IoU of all {auto_count:,} auto-labelled images "
        f"is ≥ {_floor_hundredths(lower_bound)} (target {target:.2f}). This is the count-weighted mean of the "
        f"lower bounds stated by the {iterations} that auto-labelled images ({each}); each holds with "
        f"probability at least 1 − δ, so all hold together with probability at least 1 − Σδ (union bound). "
        f"{people}"
    )


def _iteration_summary(metrics: IterationMetrics, auto: _QualityTally | None, truth_known: bool) -> IterationSummary:
    stated = metrics.threshold
    return IterationSummary(
        iteration=metrics.iteration,
        threshold=stated.threshold if stated else None,
        lower_bound=stated.lower_bound if stated else None,
        target=stated.target if stated else None,
        delta=stated.delta if stated else None,
        n_validation=stated.n_validation if stated else None,
        n_validation_above=stated.n_validation_above if stated else None,
        images_in_pool=metrics.images_in_pool,
        auto_labelled=metrics.auto_labelled,
        human_labelled=metrics.human_labelled,
        audit_labelled=metrics.audit_labelled,
        rejected_by_qc=metrics.rejected_by_qc,
        unanswered=metrics.unanswered,
        unlabelled_remaining=metrics.unlabelled_remaining,
        human_seconds=metrics.human_seconds,
        human_seconds_total=metrics.human_seconds_total,
        validation_miou=metrics.validation_miou,
        validation_map50=metrics.validation_map50,
        audit_miou=metrics.audit_miou,
        auto_in_manifest=auto.count if auto else 0,
        auto_miou_true=auto.mean() if auto and truth_known else None,
        statement=stated.statement if stated else None,
    )


def _class_name(record: LabelRecord, class_id: int) -> str:
    name = record.class_map.get(str(class_id))
    if name is None:
        raise ValueError(f"record {record.image_id}: class_id {class_id} is not in its class map")
    return name


def _thumbnail(record: LabelRecord, data: bytes) -> GalleryImage:
    """Decode an image, draw its boxes with class names, and encode a small JPEG."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = opened.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"gallery image {record.image_id}: cannot be decoded ({exc})") from exc
    if image.size != (record.width, record.height):
        raise ValueError(
            f"gallery image {record.image_id}: is {image.width}x{image.height} but its record says "
            f"{record.width}x{record.height}"
        )
    scale = min(1.0, THUMBNAIL_MAX_SIDE / max(image.size))
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=12)
    for box in record.boxes:
        colour = _CLASS_COLOURS[box.class_id % len(_CLASS_COLOURS)]
        x1, y1, x2, y2 = (coordinate * scale for coordinate in box.xyxy())
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=2)
        name = _class_name(record, box.class_id)
        # the name sits above the box, or just inside it when the box touches the top edge
        anchor = "lb" if draw.textbbox((x1, y1), name, font=font, anchor="lb")[1] >= 1 else "lt"
        text_left, text_top, text_right, text_bottom = draw.textbbox((x1, y1), name, font=font, anchor=anchor)
        draw.rectangle((text_left - 1, text_top - 1, text_right + 1, text_bottom), fill=colour)
        draw.text((x1, y1), name, fill=(255, 255, 255), font=font, anchor=anchor)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return GalleryImage(
        image_id=record.image_id,
        label_source=record.label_source,
        iteration=record.iteration,
        image_confidence=record.image_confidence,
        box_count=len(record.boxes),
        class_names=sorted({_class_name(record, box.class_id) for box in record.boxes}),
        jpeg_base64=base64.b64encode(buffer.getvalue()).decode("ascii"),
    )


# --- HTML -------------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       padding: 0 1rem; color: #1d2329; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #dde1e5; padding-bottom: 0.3rem; }
.muted { color: #65707b; font-size: 0.9rem; }
.statement { background: #eef6ee; border-left: 4px solid #3a8a3a; padding: 0.8rem 1rem; margin: 1.2rem 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 0.8rem; }
.card { border: 1px solid #dde1e5; border-radius: 6px; padding: 0.6rem 0.8rem; }
.card .value { font-size: 1.5rem; font-weight: 600; } .card .label { color: #65707b; font-size: 0.85rem; }
img.plot { max-width: 100%; }
table { border-collapse: collapse; width: 100%; font-size: 0.85rem; }
th, td { border-bottom: 1px solid #e6e9ec; padding: 0.3rem 0.5rem; text-align: right; vertical-align: top; }
th { background: #f5f7f9; } td.text { text-align: left; }
.gallery { display: flex; flex-wrap: wrap; gap: 0.8rem; }
figure { margin: 0; width: 330px; } figure img { max-width: 100%; border: 1px solid #dde1e5; }
figcaption { font-size: 0.8rem; color: #434c55; word-break: break-all; }
"""


def _render_html(report: RunReport) -> str:
    escape = html.escape
    sections = [
        f"<h1>boxloop run {escape(report.run_id)}</h1>",
        f'<p class="muted">Generated {escape(report.generated_at.isoformat(timespec="seconds"))}</p>',
        f'<p class="statement">{escape(report.statement)}</p>',
        _cards_html(report),
        "<h2>Progress</h2>",
        _plot_html(_progress_figure(report), "Auto-labelled share and human hours per iteration"),
        "<h2>Quality vs confidence threshold (validation images)</h2>",
        _curves_html(report),
        "<h2>Stated bound vs realised quality</h2>",
        _bound_vs_true_html(report),
        "<h2>Iterations</h2>",
        _iteration_table_html(report),
        "<h2>Gallery</h2>",
        _gallery_html(report),
    ]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>boxloop report {escape(report.run_id)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _format(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _cards_html(report: RunReport) -> str:
    share = report.images_auto_labelled / report.images_total if report.images_total else 0.0
    cards = [
        ("images", f"{report.images_total:,}"),
        ("auto-labelled", f"{report.images_auto_labelled:,} ({share:.0%})"),
        ("labelled by people", f"{report.images_human_labelled:,}"),
        ("unlabelled", f"{report.images_unlabelled:,}"),
        ("human hours / budget", f"{report.human_seconds / 3600:.1f} / {report.human_budget_seconds / 3600:.1f}"),
        ("iterations", f"{report.iterations}"),
        ("target mean IoU", f"{report.target_miou:.2f}"),
        (
            "auto mean IoU lower bound"
            + (f" ({_percent(report.auto_miou_confidence)})" if report.auto_miou_confidence is not None else ""),
            "—" if report.auto_miou_lower_bound is None else _floor_hundredths(report.auto_miou_lower_bound),
        ),
    ]
    if report.auto_miou_true is not None or report.human_miou_true is not None:
        cards += [
            ("auto mean IoU vs truth", _format(report.auto_miou_true, 3)),
            ("human mean IoU vs truth", _format(report.human_miou_true, 3)),
        ]
    items = "".join(
        f'<div class="card"><div class="value">{html.escape(value)}</div>'
        f'<div class="label">{html.escape(label)}</div></div>'
        for label, value in cards
    )
    return f'<div class="cards">{items}</div>'


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)  # attaches the Agg canvas: no pyplot, no GUI backend
    return figure


def _plot_html(figure: Figure | None, alt: str, empty: str = "No iterations yet.") -> str:
    if figure is None:
        return f'<p class="muted">{html.escape(empty)}</p>'
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img class="plot" alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _progress_figure(report: RunReport) -> Figure | None:
    rows = report.per_iteration
    if not rows:
        return None
    iterations = [row.iteration for row in rows]
    auto_share, human_share = [], []
    auto_so_far = human_so_far = 0
    for row in rows:
        auto_so_far += row.auto_labelled
        human_so_far += row.human_labelled + row.audit_labelled
        pool = max(row.images_in_pool, 1)
        auto_share.append(100 * auto_so_far / pool)
        human_share.append(100 * human_so_far / pool)
    figure = _figure(10, 3.4)
    share_axes, hours_axes = figure.subplots(1, 2)
    share_axes.plot(iterations, auto_share, marker="o", label="auto-labelled")
    share_axes.plot(iterations, human_share, marker="s", label="labelled by people")
    share_axes.set(xlabel="iteration", ylabel="% of pool (cumulative)", ylim=(0, 100), title="Labelled share")
    share_axes.legend(loc="best")
    hours_axes.bar(iterations, [row.human_seconds / 3600 for row in rows], label="this iteration", color="#9bbbd9")
    hours_axes.plot(
        iterations, [row.human_seconds_total / 3600 for row in rows], marker="o", color="#1f4e79", label="cumulative"
    )
    hours_axes.axhline(report.human_budget_seconds / 3600, color="#b03a2e", linestyle="--", label="budget")
    hours_axes.set(xlabel="iteration", ylabel="hours", title="Human time")
    hours_axes.legend(loc="best")
    for axes in (share_axes, hours_axes):
        axes.xaxis.get_major_locator().set_params(integer=True)
    return figure


def _curves_html(report: RunReport) -> str:
    shown = sorted(iteration for iteration, points in report.threshold_curves.items() if points)
    if not shown:
        return '<p class="muted">No threshold curves were recorded.</p>'
    note = ""
    if len(shown) > MAX_CURVE_PANELS:
        note = f'<p class="muted">Showing the last {MAX_CURVE_PANELS} of {len(shown)} iterations.</p>'
        shown = shown[-MAX_CURVE_PANELS:]
    summaries = {row.iteration: row for row in report.per_iteration}
    columns = min(3, len(shown))
    panel_rows = math.ceil(len(shown) / columns)
    figure = _figure(3.6 * columns, 2.9 * panel_rows)
    axes_grid = figure.subplots(panel_rows, columns, squeeze=False, sharey=True)
    for axes, iteration in zip(axes_grid.flat, shown):
        points = sorted(report.threshold_curves[iteration], key=lambda point: point.threshold)
        thresholds = [point.threshold for point in points]
        axes.plot(thresholds, [point.mean_quality for point in points], marker=".", label="mean IoU (c ≥ t)")
        axes.plot(thresholds, [point.lower_bound for point in points], marker=".", label="lower bound")
        summary = summaries[iteration]
        target = summary.target if summary.target is not None else report.target_miou
        axes.axhline(target, color="#b03a2e", linestyle="--", label="target")
        if summary.threshold is not None:
            axes.axvline(summary.threshold, color="#555555", linestyle=":", label="chosen t")
        axes.set(title=f"iteration {iteration}", xlabel="confidence threshold t", xlim=(0, 1), ylim=(0, 1))
    for axes in axes_grid.flat[len(shown) :]:
        axes.set_visible(False)
    axes_grid[0][0].set_ylabel("mean IoU")
    axes_grid[0][0].legend(loc="lower left", fontsize="small")
    return note + _plot_html(figure, "Validation mean IoU and its lower bound against the confidence threshold")


def _bound_vs_true_html(report: RunReport) -> str:
    rows = [row for row in report.per_iteration if row.auto_miou_true is not None and row.lower_bound is not None]
    if not rows:
        return '<p class="muted">Needs auto-labelled images and known truth (generated corpora).</p>'
    iterations = [row.iteration for row in rows]
    figure = _figure(6.5, 3.2)
    axes = figure.subplots()
    axes.plot(iterations, [row.lower_bound for row in rows], marker="v", linestyle="none", label="stated lower bound")
    axes.plot(iterations, [row.auto_miou_true for row in rows], marker="o", linestyle="none", label="realised (truth)")
    axes.axhline(report.target_miou, color="#b03a2e", linestyle="--", label="target")
    axes.set(xlabel="iteration", ylabel="mean IoU of auto-labels", ylim=(0, 1))
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.legend(loc="lower right")
    return _plot_html(figure, "Stated lower bound and realised mean IoU of auto-labels per iteration")


def _iteration_table_html(report: RunReport) -> str:
    if not report.per_iteration:
        return '<p class="muted">No iterations yet.</p>'
    header = (
        "<tr><th>iteration</th><th>threshold</th><th>lower bound</th><th>target</th><th>validation ≥ t / all</th>"
        "<th>auto</th><th>human</th><th>audit</th><th>rejected</th><th>unanswered</th><th>left</th>"
        "<th>human h</th><th>realised auto IoU</th><th>statement</th></tr>"
    )
    rows = []
    for row in report.per_iteration:
        validation = (
            "—" if row.n_validation is None else f"{row.n_validation_above:,} / {row.n_validation:,}"
        )
        cells = [
            str(row.iteration),
            _format(row.threshold, 3),
            _format(row.lower_bound, 3),
            _format(row.target),
            validation,
            f"{row.auto_labelled:,}",
            f"{row.human_labelled:,}",
            f"{row.audit_labelled:,}",
            f"{row.rejected_by_qc:,}",
            f"{row.unanswered:,}",
            f"{row.unlabelled_remaining:,}",
            f"{row.human_seconds / 3600:.2f}",
            _format(row.auto_miou_true, 3),
        ]
        rendered = "".join(f"<td>{html.escape(cell)}</td>" for cell in cells)
        rows.append(f'<tr>{rendered}<td class="text">{html.escape(row.statement or "—")}</td></tr>')
    return f"<table>{header}{''.join(rows)}</table>"


def _gallery_html(report: RunReport) -> str:
    if not report.gallery:
        return '<p class="muted">No gallery images were given.</p>'
    groups = (
        ("Auto-labelled", [item for item in report.gallery if item.label_source is LabelSource.AUTO]),
        ("Routed to people", [item for item in report.gallery if item.label_source is not LabelSource.AUTO]),
    )
    parts = []
    for title, items in groups:
        if not items:
            continue
        figures = []
        for item in items:
            confidence = "" if item.image_confidence is None else f", confidence {item.image_confidence:.3f}"
            caption = (
                f"{item.label_source.value}, iteration {item.iteration}{confidence}, {item.box_count} boxes: "
                f"{', '.join(item.class_names) or 'none'} — {item.image_id}"
            )
            figures.append(
                f'<figure><img alt="{html.escape(item.image_id)}" '
                f'src="data:image/jpeg;base64,{item.jpeg_base64}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        parts.append(f'<h3>{title}</h3><div class="gallery">{"".join(figures)}</div>')
    return "\n".join(parts)
