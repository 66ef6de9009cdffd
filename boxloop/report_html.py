"""The run report as a single self-contained ``report.html``: cards, plots, the iteration table, a gallery.

It draws a ``boxloop.report.RunReport``; it computes no figure of its own. The
page opens from disk with no network: plots are inline PNG (matplotlib's Agg
canvas, no pyplot), gallery thumbnails inline JPEG with the boxes drawn.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict

from boxloop.models import LabelRecord, LabelSource
from boxloop.report import RunReport, floor_hundredths, floor_percent

THUMBNAIL_MAX_SIDE = 320
MAX_CURVE_PANELS = 12
_CLASS_COLOURS = [tuple(round(255 * channel) for channel in rgb) for rgb in matplotlib.colormaps["tab10"].colors]


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


def _class_name(record: LabelRecord, class_id: int) -> str:
    name = record.class_map.get(str(class_id))
    if name is None:
        raise ValueError(f"record {record.image_id}: class_id {class_id} is not in its class map")
    return name


def gallery_thumbnail(record: LabelRecord, data: bytes) -> GalleryImage:
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


def render_report_html(report: RunReport, gallery: Sequence[tuple[LabelRecord, bytes]] = ()) -> str:
    """The report as one HTML page that needs no network to open.

    ``gallery`` pairs records with their image bytes (see ``boxloop.report.gallery_candidates``); each
    becomes a thumbnail with its boxes drawn. Raises ValueError naming the image when one cannot be decoded
    or its size differs from its record's.
    """
    thumbnails = [gallery_thumbnail(record, data) for record, data in gallery]
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
        "<h2>Images that cannot be labelled</h2>",
        _unlabellable_html(report),
        "<h2>Gallery</h2>",
        _gallery_html(thumbnails),
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
            + (f" ({floor_percent(report.auto_miou_confidence)})" if report.auto_miou_confidence is not None else ""),
            "—" if report.auto_miou_lower_bound is None else floor_hundredths(report.auto_miou_lower_bound),
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
    for axes, iteration in zip(axes_grid.flat, shown, strict=False):  # the grid may have spare panels
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
        "<th>auto</th><th>human</th><th>audit</th><th>rejected</th><th>unanswered</th><th>cannot label</th><th>left</th>"
        "<th>human h</th><th>realised auto IoU</th><th>statement</th></tr>"
    )
    rows = []
    for row in report.per_iteration:
        validation = "—" if row.n_validation is None else f"{row.n_validation_above:,} / {row.n_validation:,}"
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
            f"{row.unlabellable:,}",
            f"{row.unlabelled_remaining:,}",
            f"{row.human_seconds / 3600:.2f}",
            _format(row.auto_miou_true, 3),
        ]
        rendered = "".join(f"<td>{html.escape(cell)}</td>" for cell in cells)
        rows.append(f'<tr>{rendered}<td class="text">{html.escape(row.statement or "—")}</td></tr>')
    return f"<table>{header}{''.join(rows)}</table>"


def _unlabellable_html(report: RunReport) -> str:
    if not report.unlabellable:
        return '<p class="muted">None: labellers could label every image they were given.</p>'
    header = "<tr><th>iteration</th><th>image</th><th>reasons</th></tr>"
    rows = [
        f'<tr><td>{image.iteration}</td><td class="text">{html.escape(image.source_ref)}<br>'
        f'<span class="muted">{html.escape(image.image_id)}</span></td>'
        f'<td class="text">{"<br>".join(html.escape(reason) for reason in image.reasons)}</td></tr>'
        for image in report.unlabellable
    ]
    return f"<p>These images left the pool with the labellers' reasons.</p><table>{header}{''.join(rows)}</table>"


def _gallery_html(thumbnails: Sequence[GalleryImage]) -> str:
    if not thumbnails:
        return '<p class="muted">No gallery images were given.</p>'
    groups = (
        ("Auto-labelled", [item for item in thumbnails if item.label_source is LabelSource.AUTO]),
        ("Routed to people", [item for item in thumbnails if item.label_source is not LabelSource.AUTO]),
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
