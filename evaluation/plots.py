"""Matplotlib drawings shared by `--mode=inspect`, TensorBoard image summaries and
bench/plot_curves.py: an attention heatmap grid, a confusion matrix and training curves.

Figures are `matplotlib.figure.Figure` objects rendered by the Agg canvas directly (no pyplot:
no display, no global figure registry to leak from a long training run). Layout is computed in
inches from the number and length of the labels, so that subword tokens stay readable (one tick
label per token, 7 pt, at least CELL inches apart) for sentences of 40 tokens and more.
"""
import io
import math
import os
import textwrap
from typing import Mapping, Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

CELL = 0.17          # inches per token on a heatmap axis (7 pt labels need ~0.1)
TICK_PT = 7          # tick-label font size
CHAR_IN = 0.6 * TICK_PT / 72  # generous width of one tick-label character, inches
MARK_COLOR = "#d62728"
Pair = Tuple[int, int]


def _tick_extent(labels: Sequence[str]) -> float:
  """Inches taken by the longest of `labels` (plus the tick and the axis label)."""
  return max([len(s) for s in labels] + [1]) * CHAR_IN + 0.45


def _wrap(lines: Sequence[str], width_in: float, points: float) -> list:
  chars = max(20, int(width_in / (0.6 * points / 72)))
  return [part for line in lines for part in (textwrap.wrap(line, chars) or [""])]


def attention_grid(attention, source_tokens: Sequence[str], target_tokens: Sequence[str],
                   marked: Mapping[Pair, Sequence[str]] = None,
                   caption: Sequence[str] = ()) -> Figure:
  """One heatmap per (decoder layer, head): rows = layers, columns = heads.

  Args:
    attention: float array [L, H, T, S] (or a list over layers of [H, T, S]); row t is the
      attention while producing target token t.
    source_tokens: S labels (x axis, bottom row of panels).
    target_tokens: T labels (y axis, left column of panels).
    marked: {(layer, head): names of the regularisers on that pair}; those panels get a red
      frame and a red title.
    caption: lines above the grid (source, translation, predictions); long lines are wrapped.

  Returns:
    The figure; `fig.heatmap_axes[layer][head]` is each panel (its image holds the values).
  """
  attention = np.asarray(attention, np.float32)
  layers, heads, t_len, s_len = attention.shape
  if (t_len, s_len) != (len(target_tokens), len(source_tokens)):
    raise ValueError(f"attention {attention.shape} does not match {len(target_tokens)} target "
                     f"and {len(source_tokens)} source tokens")
  marked = marked or {}
  panel_w, panel_h = max(1.7, s_len * CELL), max(1.0, t_len * CELL)
  gap_w, gap_h = 0.15, 0.35
  left, bottom = _tick_extent(target_tokens), _tick_extent(source_tokens)
  grid_w = heads * panel_w + (heads - 1) * gap_w
  width = left + grid_w + 1.0
  lines = _wrap(caption, width - 0.3, 9)
  top = 0.25 + 0.19 * len(lines)
  height = bottom + layers * (panel_h + gap_h) + top
  fig = Figure(figsize=(width, height))
  vmax = float(max(attention.max(), 1e-6))
  fig.heatmap_axes = []
  for layer in range(layers):
    row = []
    y = bottom + (layers - 1 - layer) * (panel_h + gap_h)
    for head in range(heads):
      x = left + head * (panel_w + gap_w)
      ax = fig.add_axes([x / width, y / height, panel_w / width, panel_h / height])
      image = ax.imshow(attention[layer, head], cmap="viridis", vmin=0.0, vmax=vmax,
                        aspect="auto", interpolation="nearest")
      _label_panel(ax, layer, head, marked.get((layer, head), ()), source_tokens, target_tokens,
                   first_col=head == 0, last_row=layer == layers - 1)
      row.append(ax)
    fig.heatmap_axes.append(row)
  _colorbar(fig, image, [left + grid_w + 0.2, bottom, 0.12,
                         min(2.5, layers * (panel_h + gap_h) - gap_h)], "attention")
  for i, line in enumerate(lines):
    fig.text(0.15 / width, 1 - (0.15 + 0.19 * (i + 1)) / height, line, fontsize=9)
  return fig


def _colorbar(fig, image, rect_in, label: str = "") -> None:
  """A colorbar for `image` at `rect_in` = [left, bottom, width, height] in inches."""
  width, height = fig.get_size_inches()
  x, y, w, h = rect_in
  bar = fig.colorbar(image, cax=fig.add_axes([x / width, y / height, w / width, h / height]))
  bar.ax.tick_params(labelsize=TICK_PT)
  if label:
    bar.set_label(label, fontsize=8)


def _label_panel(ax, layer, head, regularisers, source_tokens, target_tokens, first_col,
                 last_row) -> None:
  """Ticks on every token; labels only on the outer panels (shared by the whole grid)."""
  ax.set_xticks(range(len(source_tokens)))
  ax.set_yticks(range(len(target_tokens)))
  if last_row:
    ax.set_xticklabels(source_tokens, rotation=90, fontsize=TICK_PT)
    ax.set_xlabel("source token", fontsize=8)
  else:
    ax.set_xticklabels([])
  if first_col:
    ax.set_yticklabels(target_tokens, fontsize=TICK_PT)
    ax.set_ylabel("output token", fontsize=8)
  else:
    ax.set_yticklabels([])
  ax.tick_params(length=2)
  title = f"layer {layer} head {head}"
  if regularisers:
    title += " (regularised)"
    for spine in ax.spines.values():
      spine.set_edgecolor(MARK_COLOR)
      spine.set_linewidth(2.5)
  ax.set_title(title, fontsize=8, color=MARK_COLOR if regularisers else "black", pad=3)


def confusion_figure(matrix, class_names: Sequence[str], title: str) -> Figure:
  """Counts of (label row, prediction column); cell counts written when there are <= 25 classes.

  Returns:
    The figure; `fig.matrix_axes.images[0]` holds the counts.
  """
  matrix = np.asarray(matrix, np.float64)
  n = matrix.shape[0]
  if matrix.shape != (n, n) or len(class_names) != n:
    raise ValueError(f"confusion matrix {matrix.shape} does not match {len(class_names)} classes")
  cell = 0.45 if n <= 25 else CELL
  side = _tick_extent(class_names)
  size = max(2.5, n * cell)
  width, height = side + size + 1.0, side + size + 0.7
  fig = Figure(figsize=(width, height))
  ax = fig.add_axes([side / width, side / height, size / width, size / height])
  image = ax.imshow(matrix, cmap="Blues", interpolation="nearest", aspect="auto")
  ax.set_xticks(range(n))
  ax.set_xticklabels(class_names, rotation=90, fontsize=TICK_PT)
  ax.set_yticks(range(n))
  ax.set_yticklabels(class_names, fontsize=TICK_PT)
  ax.set_xlabel("predicted", fontsize=8)
  ax.set_ylabel("label", fontsize=8)
  accuracy = np.trace(matrix) / matrix.sum() if matrix.sum() else float("nan")
  ax.set_title(f"{title}: {int(matrix.sum())} examples, accuracy {accuracy:.3f}", fontsize=9)
  if n <= 25:
    peak = matrix.max() or 1.0
    for i in range(n):
      for j in range(n):
        ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=8,
                color="white" if matrix[i, j] > 0.6 * peak else "black")
  _colorbar(fig, image, [side + size + 0.15, side, 0.12, size], "examples")
  fig.matrix_axes = ax
  return fig


def curves_figure(series: Mapping[str, Tuple[Sequence[float], Sequence[float]]], xlabel: str,
                  title: str = "") -> Figure:
  """One small panel per named (x, y) series, three per row, in the given order.

  Returns:
    The figure; `fig.curve_axes[name]` is each panel (its first line holds the points).
  """
  return compare_figure({"": series}, xlabel, title)


def compare_figure(runs: Mapping[str, Mapping[str, Tuple[Sequence[float], Sequence[float]]]],
                   xlabel: str, title: str = "") -> Figure:
  """Several runs' series on the same panels: one panel per series name (in order of first
  appearance), one line per run that has it, labelled with the run's key in a legend (no legend
  for a single run).

  Returns:
    The figure; `fig.curve_axes[name]` is each panel, its lines in the order of `runs`.
  """
  names = list(dict.fromkeys(name for series in runs.values() for name in series))
  if not names:
    raise ValueError("no series to plot")
  cols = min(3, len(names))
  rows = math.ceil(len(names) / cols)
  fig = Figure(figsize=(4.2 * cols, 3.0 * rows + (0.4 if title else 0)), layout="constrained")
  if title:
    fig.suptitle(title, fontsize=11)
  fig.curve_axes = {}
  for i, name in enumerate(names):
    ax = fig.add_subplot(rows, cols, i + 1)
    for label, series in runs.items():
      if name in series:
        x, y = series[name]
        ax.plot(x, y, marker="o" if len(x) <= 30 else None, markersize=3, linewidth=1.2,
                label=label)
    if len(runs) > 1:
      ax.legend(fontsize=7)
    ax.set_title(name, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    fig.curve_axes[name] = ax
  return fig


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
  """The figure as PNG bytes (Agg canvas), trimmed to its drawn extent."""
  FigureCanvasAgg(fig)
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.1)
  return buffer.getvalue()


def save_png(fig: Figure, path: str, dpi: int = 100) -> str:
  """Writes the figure to `path` (creating its directory); returns the path."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "wb") as f:
    f.write(png_bytes(fig, dpi))
  return path


def overlapping_text(fig: Figure) -> list:
  """Pairs of visible, non-empty texts whose drawn boxes overlap (a readability check).

  Compares tick labels, titles, axis labels and figure texts of every axes; texts inside one
  heatmap or matrix cell area (cell annotations) are not compared with each other.
  """
  canvas = FigureCanvasAgg(fig)
  canvas.draw()  # positions of ticks and labels are final only after a draw
  renderer = canvas.get_renderer()
  boxes = []
  for ax in fig.axes:
    texts = ax.get_xticklabels() + ax.get_yticklabels() + [ax.title, ax.xaxis.label,
                                                            ax.yaxis.label]
    for text in texts:
      if text.get_visible() and text.get_text():
        boxes.append((text.get_text(), text.get_window_extent(renderer)))
  for text in fig.texts:
    boxes.append((text.get_text(), text.get_window_extent(renderer)))
  clashes = []
  for i, (name_a, a) in enumerate(boxes):
    for name_b, b in boxes[i + 1:]:
      if a.overlaps(b) and a.width > 0 and b.width > 0:
        clashes.append((name_a, name_b))
  return clashes
