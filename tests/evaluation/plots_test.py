"""evaluation/plots.py: panels, drawn values, marks, readable labels (no overlapping text at 40
tokens), confusion counts and curves, on arrays small enough to check by hand."""
import io

import matplotlib.image
import numpy as np
import pytest

from evaluation import plots

# SentencePiece-like pieces of realistic lengths (the longest German/English words of Multi30k).
PIECES = ("▁the ▁international ▁photo graph ers ▁stand ▁near ▁a ▁large ▁white ▁building , "
          "▁while ▁several ▁children ▁play ▁in ▁the ▁fountain ▁Überraschung s ▁München").split()


def _heatmap_values(fig):
  return np.stack([np.stack([np.asarray(ax.images[0].get_array()) for ax in row])
                   for row in fig.heatmap_axes])


def test_grid_has_one_panel_per_layer_and_head_holding_its_attention():
  attention = np.arange(2 * 3 * 2 * 3, dtype=np.float32).reshape(2, 3, 2, 3) / 36.0
  fig = plots.attention_grid(attention, ["▁a", "b", "</s>"], ["▁x", "</s>"])
  assert len(fig.heatmap_axes) == 2 and all(len(row) == 3 for row in fig.heatmap_axes)
  assert len(fig.axes) == 2 * 3 + 1  # the panels and one colorbar
  np.testing.assert_array_equal(_heatmap_values(fig), attention)
  # Labels on the outer panels only: bottom row has the source tokens, left column the target.
  bottom_left = fig.heatmap_axes[1][0]
  assert [t.get_text() for t in bottom_left.get_xticklabels()] == ["▁a", "b", "</s>"]
  assert [t.get_text() for t in bottom_left.get_yticklabels()] == ["▁x", "</s>"]
  assert all(not t.get_text() for t in fig.heatmap_axes[0][1].get_xticklabels())


def test_regularised_pairs_are_framed_and_titled_in_red():
  attention = np.full([2, 2, 1, 2], 0.5, np.float32)
  fig = plots.attention_grid(attention, ["a", "b"], ["x"], marked={(1, 0): ["coverage"]})
  for layer in range(2):
    for head in range(2):
      ax = fig.heatmap_axes[layer][head]
      marked = (layer, head) == (1, 0)
      assert ax.title.get_text() == f"layer {layer} head {head}" + (" (regularised)" * marked)
      assert (ax.spines["left"].get_linewidth() == 2.5) == marked
      assert (ax.title.get_color() == plots.MARK_COLOR) == marked


def test_shape_mismatch_is_an_error():
  with pytest.raises(ValueError, match="does not match 2 target and 3 source"):
    plots.attention_grid(np.zeros([1, 1, 2, 4]), ["a", "b", "c"], ["x", "y"])


def _forty_token_grid(cell=None, monkeypatch=None):
  if cell is not None:
    monkeypatch.setattr(plots, "CELL", cell)
  source = [PIECES[i % len(PIECES)] for i in range(39)] + ["</s>"]
  target = [PIECES[(7 * i) % len(PIECES)] for i in range(39)] + ["</s>"]
  attention = np.random.default_rng(0).dirichlet(np.ones(40), size=(3, 4, 40))
  caption = ["source: " + " ".join(source), "translation: " + " ".join(target)]
  return plots.attention_grid(attention, source, target, {(2, 1): ["attention_entropy"]}, caption)


def test_forty_token_sentences_have_every_token_labelled_and_no_overlapping_text():
  fig = _forty_token_grid()
  bottom_left = fig.heatmap_axes[2][0]
  assert len([t for t in bottom_left.get_xticklabels() if t.get_text()]) == 40
  assert len([t for t in bottom_left.get_yticklabels() if t.get_text()]) == 40
  assert plots.overlapping_text(fig) == []


def test_overlap_check_catches_cramped_labels(monkeypatch):
  """The readability check can fail: 0.03 inches per token makes neighbouring labels collide."""
  assert plots.overlapping_text(_forty_token_grid(0.03, monkeypatch))


def test_png_has_the_figure_size():
  fig = plots.attention_grid(np.full([1, 1, 2, 2], 0.5), ["a", "b"], ["x", "y"])
  data = plots.png_bytes(fig, dpi=50)
  assert data[:8] == b"\x89PNG\r\n\x1a\n"
  height, width, _ = matplotlib.image.imread(io.BytesIO(data)).shape
  fig_w, fig_h = fig.get_size_inches() * 50
  assert 0.5 * fig_w < width <= fig_w + 10 and 0.5 * fig_h < height <= fig_h + 10


def test_confusion_matrix_counts_labels_and_accuracy():
  matrix = np.array([[2, 1], [0, 1]])
  fig = plots.confusion_figure(matrix, ["<10", ">=10"], "price")
  ax = fig.matrix_axes
  np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), matrix)
  assert sorted(t.get_text() for t in ax.texts) == ["0", "1", "1", "2"]
  assert ax.title.get_text() == "price: 4 examples, accuracy 0.750"
  assert [t.get_text() for t in ax.get_xticklabels()] == ["<10", ">=10"]
  assert plots.overlapping_text(fig) == []
  with pytest.raises(ValueError):
    plots.confusion_figure(matrix, ["only one"], "price")


def test_curves_one_panel_per_series_with_its_points():
  series = {"validation bleu": ([100, 200], [3.5, 7.25]), "loss": ([10, 20, 30], [5.0, 4.0, 3.5]),
            "loss/price": ([10, 20, 30], [1.6, 1.5, 1.2]), "learning_rate": ([10], [1e-3])}
  fig = plots.curves_figure(series, "step", "run")
  assert list(fig.curve_axes) == list(series)
  assert len(fig.axes) == 4
  for name, (x, y) in series.items():
    line = fig.curve_axes[name].lines[0]
    assert list(line.get_xdata()) == x and list(line.get_ydata()) == y
    assert fig.curve_axes[name].get_title() == name
  with pytest.raises(ValueError):
    plots.curves_figure({}, "step")


def test_compare_puts_each_run_on_the_shared_panels_with_a_legend():
  runs = {"inverse sqrt": {"validation bleu": ([1, 2], [30.0, 35.0]), "loss": ([1], [4.0])},
          "linear": {"validation bleu": ([1, 2], [31.0, 36.5])}}
  fig = plots.compare_figure(runs, "wall time (s)")
  assert list(fig.curve_axes) == ["validation bleu", "loss"]
  bleu = fig.curve_axes["validation bleu"]
  assert [line.get_label() for line in bleu.lines] == ["inverse sqrt", "linear"]
  assert list(bleu.lines[1].get_ydata()) == [31.0, 36.5]
  assert [t.get_text() for t in bleu.get_legend().get_texts()] == ["inverse sqrt", "linear"]
  assert len(fig.curve_axes["loss"].lines) == 1  # only the run that has it
