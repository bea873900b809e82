"""The evaluation report: one self-contained HTML page, a CSV and a JSON summary.

`write_report` takes what `keras-unet-seg evaluate` computed (per-image scores from
`keras_unet_seg.evaluation`, the images, truths and predictions) and writes into a
folder: `report.html` (every thumbnail embedded as a PNG data URI, no script or
style from the network), `per_image.csv` and `summary.json`. The page shows the
summary per class, the confusion matrix, a histogram of per-image Dice, and a table
of every image with its thumbnails (image, truth, prediction, overlay), sortable by
any column, worst Dice first.
"""

import base64
import csv
import html
import io
import math
import os

import numpy as np

from keras_unet_seg import _atomic
from keras_unet_seg.evaluation import METRICS

__all__ = ["write_report"]

# The longer side of each thumbnail, by default.
THUMBNAIL_SIZE = 128

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f3f3f3; }
.wide { max-width: 100%; overflow-x: auto; }
#images { font-size: 0.85em; font-variant-numeric: tabular-nums; }
#images th, #images td { padding: 0.2em 0.3em; }
#images th { cursor: pointer; user-select: none; min-width: 3.5em; }
#images th.sorted::after { content: " \\25B2"; }
#images th.sorted.descending::after { content: " \\25BC"; }
td.name { text-align: left; font-family: monospace; min-width: 8em; max-width: 14em;
  overflow-wrap: anywhere; }
div.thumbs { display: grid; grid-template-columns: repeat(2, max-content); gap: 2px; }
div.thumbs img { image-rendering: pixelated; }
.legend span { display: inline-block; width: 0.9em; height: 0.9em; margin: 0 0.3em 0 1em; }
"""

# Sorts the per-image table by the clicked column; numbers as numbers, text as text.
_SCRIPT = """
const table = document.getElementById("images");
const headers = Array.from(table.tHead.rows[0].cells);
function sortBy(column, descending) {
  const rows = Array.from(table.tBodies[0].rows);
  rows.sort((a, b) => {
    const x = a.cells[column].dataset.value, y = b.cells[column].dataset.value;
    const order = isNaN(x) || isNaN(y) ? x.localeCompare(y) : Number(x) - Number(y);
    return descending ? -order : order;
  });
  rows.forEach((row) => table.tBodies[0].appendChild(row));
  headers.forEach((h) => h.classList.remove("sorted", "descending"));
  headers[column].classList.add("sorted");
  if (descending) headers[column].classList.add("descending");
}
headers.forEach((header, column) => {
  if (header.dataset.sortable === undefined) return;
  header.addEventListener("click", () => {
    const again = header.classList.contains("sorted");
    sortBy(column, again && !header.classList.contains("descending"));
  });
});
sortBy(Number(table.dataset.initial), false);
"""


def _png_uri(array):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _thumbnail(array, size):
    """A uint8 RGB array shrunk so that its longer side is at most `size`."""
    from PIL import Image

    image = Image.fromarray(array)
    image.thumbnail((size, size), Image.Resampling.NEAREST)
    return np.asarray(image)


def _thumbnails(record, size):
    from keras_unet_seg import viz

    image = viz.overlay_mask(record["image"], np.zeros(record["truth"].shape, np.int64))
    black = np.zeros_like(image)
    panels = (
        image,
        viz.overlay_mask(black, record["truth"], alpha=1.0),
        viz.overlay_mask(black, record["prediction"], alpha=1.0),
        viz.overlay_mask(image, record["prediction"], alpha=1.0, mode="contour"),
    )
    return [_png_uri(_thumbnail(panel, size)) for panel in panels]


def _number(value):
    if value is None or (isinstance(value, float) and math.isinf(value)):
        return "inf"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _columns(class_ids, class_names, metrics):
    single = len(class_ids) == 1
    return [
        (class_id, metric, metric if single else f"{metric}_{class_names[class_id]}")
        for class_id in class_ids
        for metric in metrics
    ]


def _mean_dice(scores, class_ids):
    return float(np.mean([scores[c]["dice"] for c in class_ids]))


def _histogram_svg(values, bins=10, width=420, height=140):
    counts, _ = np.histogram(values, bins=bins, range=(0.0, 1.0))
    top = max(int(counts.max()), 1)
    bar = width / bins
    parts = [f'<svg width="{width}" height="{height + 30}" role="img" aria-label="Dice histogram">']
    for index, count in enumerate(counts):
        tall = height * count / top
        x, y = index * bar, height - tall
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" height="{tall:.1f}" '
            f'fill="#4c78a8"><title>{index / bins:.1f}-{(index + 1) / bins:.1f}: '
            f"{count} images</title></rect>"
        )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{height + 14}" font-size="10" '
            f'text-anchor="middle">{index / bins:.1f}</text>'
        )
    parts.append(
        f'<text x="{width / 2}" y="{height + 28}" font-size="11" text-anchor="middle">'
        "Dice per image (mean over classes)</text></svg>"
    )
    return "".join(parts)


def _confusion_html(matrix, class_names):
    rows = ["<table><tr><th>truth \\ prediction</th>"]
    rows += [f"<th>{html.escape(class_names[c])}</th>" for c in range(len(matrix))]
    rows.append("</tr>")
    for true_id, row in enumerate(matrix):
        rows.append(f"<tr><th>{html.escape(class_names[true_id])}</th>")
        for count in row:
            shade = int(255 - 155 * count / max(int(row.sum()), 1))
            rows.append(f'<td style="background: rgb({shade},{shade},255)">{int(count)}</td>')
        rows.append("</tr>")
    return "".join(rows) + "</table>"


def report_files(directory):
    """The paths `write_report` writes in `directory`: `"html"`, `"csv"`, `"json"`."""
    return {
        "html": os.path.join(directory, "report.html"),
        "csv": os.path.join(directory, "per_image.csv"),
        "json": os.path.join(directory, "summary.json"),
    }


def write_report(
    directory,
    records,
    summary,
    confusion,
    *,
    class_names=None,
    title="Segmentation report",
    details=None,
    thumbnail_size=THUMBNAIL_SIZE,
):
    """Writes `report.html`, `per_image.csv` and `summary.json` into `directory`.

    Args:
        directory: the folder to write (created if needed).
        records: one dict an image: `"name"` (str), `"image"` (float `[0, 1]` or
            uint8, 1 or 3 channels), `"truth"` and `"prediction"` (class ids
            `(height, width)`), `"scores"` (a `segmentation_scores` result).
        summary: the `evaluation.summarize` result, by class id.
        confusion: the confusion matrix pooled over the images
            `(num_classes, num_classes)`.
        class_names: a list of names by class id; default `"background"`,
            `"foreground"` for 2 classes, `"class 0"`, `"class 1"`, ... otherwise.
        title: the page's title.
        details: a dict of what was evaluated (model, data, threshold, spacing, ...),
            shown at the top and stored in `summary.json`.
        thumbnail_size: int, default 128: the longer side of each thumbnail.

    Returns:
        A dict with the paths written: `"html"`, `"csv"`, `"json"`.
    """
    confusion = np.asarray(confusion)
    if class_names is None:
        class_names = _default_class_names(len(confusion))
    class_ids = sorted(summary)
    metrics = [m for m in METRICS if m in summary[class_ids[0]]]
    columns = _columns(class_ids, class_names, metrics)
    os.makedirs(directory, exist_ok=True)
    paths = report_files(directory)
    _write_csv(paths["csv"], records, class_ids, columns)
    document = {
        "details": details or {},
        "classes": {class_names[c]: summary[c] for c in class_ids},
        "confusion_matrix": confusion.tolist(),
        "class_names": list(class_names),
        "num_images": len(records),
    }
    _atomic.write_json(paths["json"], document)
    sections = {
        "summary": _summary_table(summary, class_ids, class_names, metrics),
        "confusion": _confusion_html(confusion, class_names),
        "histogram": _histogram_svg([_mean_dice(r["scores"], class_ids) for r in records]),
        "images": _images_table(records, class_ids, class_names, columns, thumbnail_size),
    }
    page = _page(title, details, len(records), sections)
    with (
        _atomic.atomic_path(paths["html"]) as temporary,
        open(temporary, "w", encoding="utf-8") as f,
    ):
        f.write(page)
    return paths


def _default_class_names(num_classes):
    if num_classes == 2:
        return ["background", "foreground"]
    return [f"class {c}" for c in range(num_classes)]


def _write_csv(path, records, class_ids, columns):
    """`per_image.csv`: one row an image, its mean Dice, then every class's metrics."""
    with (
        _atomic.atomic_path(path) as temporary,
        open(temporary, "w", newline="", encoding="utf-8") as f,
    ):
        writer = csv.writer(f)
        writer.writerow(["image", "dice_mean", *(label for _, _, label in columns)])
        for record in records:
            scores = record["scores"]
            writer.writerow(
                [
                    record["name"],
                    f"{_mean_dice(scores, class_ids):.6f}",
                    *(_number(scores[c][m]) for c, m, _ in columns),
                ]
            )


def _summary_table(summary, class_ids, class_names, metrics):
    """The summary table: a row a class, its metrics and pixel counts."""
    rows = "".join(
        f"<tr><th>{html.escape(class_names[c])}</th>"
        + "".join(f"<td>{_number(summary[c][m])}</td>" for m in metrics)
        + f"<td>{summary[c]['tp']}</td><td>{summary[c]['fp']}</td><td>{summary[c]['fn']}</td>"
        + "</tr>"
        for c in class_ids
    )
    return (
        f'<table id="summary"><tr><th>class</th>{"".join(f"<th>{m}</th>" for m in metrics)}\n'
        f"<th>TP</th><th>FP</th><th>FN</th></tr>{rows}</table>"
    )


def _images_table(records, class_ids, class_names, columns, thumbnail_size):
    """The legend and the sortable table of every image, with its thumbnails."""
    legend = "".join(
        f'<span style="background: rgb{_color(c)}"></span>{html.escape(class_names[c])}'
        for c in class_ids
    )
    rows = "".join(_image_row(r, class_ids, columns, thumbnail_size) for r in records)
    header = "".join(f"<th data-sortable>{_breakable(label)}</th>" for _, _, label in columns)
    return f"""<p class="legend">Thumbnails: image, truth, prediction, predicted outline.
Classes:{legend}. Click a column to sort; worst Dice first.</p>
<div class="wide"><table id="images" data-initial="2"><thead><tr><th data-sortable>image</th>
<th>image, truth, prediction, overlay</th><th data-sortable>dice (mean)</th>{header}
</tr></thead><tbody>{rows}</tbody></table></div>"""


def _breakable(text):
    """Escaped `text` that may wrap after its underscores and slashes (long names)."""
    return html.escape(text).replace("_", "_<wbr>").replace("/", "/<wbr>")


def _image_row(record, class_ids, columns, thumbnail_size):
    scores = record["scores"]
    mean = _mean_dice(scores, class_ids)
    thumbs = "".join(
        f'<img src="{uri}" alt="{label}" title="{label}">'
        for uri, label in zip(
            _thumbnails(record, thumbnail_size),
            ("image", "truth", "prediction", "overlay"),
            strict=True,
        )
    )
    cells = "".join(
        f'<td data-value="{_sort_value(scores[c][m])}">{_number(scores[c][m])}</td>'
        for c, m, _ in columns
    )
    name = html.escape(record["name"])
    return (
        f'<tr><td class="name" data-value="{name}">{_breakable(record["name"])}</td>'
        f'<td><div class="thumbs">{thumbs}</div></td>'
        f'<td class="mean" data-value="{mean:.6f}">{mean:.4f}</td>{cells}</tr>'
    )


def _page(title, details, num_images, sections):
    """The whole HTML document, its sections already rendered."""
    facts = "".join(
        f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>"
        for k, v in (details or {}).items()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<ul>{facts}<li><b>images</b>: {num_images}</li></ul>
<h2>Summary by class</h2>
<p>Dice, IoU, precision and recall from the pixel counts pooled over every image;
HD95, ASSD (in units of the pixel spacing) and NSD averaged over the images where
both truth and prediction hold the class.</p>
{sections["summary"]}
<h2>Confusion matrix (pixels)</h2>
{sections["confusion"]}
<h2>Dice per image</h2>
{sections["histogram"]}
<h2>Images</h2>
{sections["images"]}
<script>{_SCRIPT}</script>
</body></html>
"""


def _color(class_id):
    from keras_unet_seg import viz

    return viz.class_color(class_id)


def _sort_value(value):
    return "1e308" if isinstance(value, float) and math.isinf(value) else f"{value}"
