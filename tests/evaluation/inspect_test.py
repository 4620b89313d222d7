"""--mode=inspect and the TensorBoard validation images, on a tiny 2-layer, 2-head Transformer
trained for a few steps: the drawn heatmaps are the model's attention for that sentence, the
regularised pair is marked, the files and index.html are complete, the summaries are written."""
import contextlib
import dataclasses
import io
import json
import math
import os
import types

import matplotlib.image
import numpy as np
import pytest
import tensorflow as tf

from configs.config import HeadSpec
from configs.errors import UserError
from data.tokenizer import BOS
from evaluation import inspect as insp
from evaluation.evaluate import make_decoder
from model import outputs as out
from tests_support import tiny_config
from conftest import write_copy_corpus
from training import loop, modes

HEADS = (HeadSpec("price"), HeadSpec("domain"),
         HeadSpec("attention_entropy", (("layers", "1"), ("heads", "0"))))


@pytest.fixture(scope="module")
def config(tmp_path_factory):
  root = tmp_path_factory.mktemp("inspect")
  base = tiny_config(root / "work", write_copy_corpus(root / "copy"), True, train_steps=10,
                     checkpoint_every=10)
  config = dataclasses.replace(base, heads=HEADS,
                               model=dataclasses.replace(base.model, num_layers=2),
                               eval=dataclasses.replace(base.eval, max_eval_examples=16))
  loop.train(config)
  return config


@pytest.fixture(scope="module")
def components(config):
  return modes.components_for_inference(config)


def _alone(c, line, output_ids):
  """The model's cross-attention [L, H, T, S] for one sentence in a batch of its own."""
  source = next(iter(c.bundle.text_dataset([line], 1)))["source"]
  target_in = tf.constant([[BOS] + list(output_ids[:-1])], tf.int32)
  result = c.model({"source": source, "target_in": target_in}, training=False)
  return source.numpy()[0], np.stack([a.numpy()[0] for a in result[out.CROSS_ATTENTION]])


def test_heatmaps_are_the_models_attention_for_that_sentence(components):
  c = components
  lines = ["apple bird cloud", "stone tiger umbrella valley window yellow zebra apple garden"]
  items = insp.inspect_sentences(c, lines, make_decoder(c.model, c.config.eval), batch_size=2)
  marked = insp.regularised_pairs(c.heads, 2, 2)
  assert marked == {(1, 0): ["attention_entropy"]}
  for line, item in zip(lines, items):
    source, expected = _alone(c, line, item.output_ids)
    np.testing.assert_array_equal(item.source_ids, source)  # padding in the batch is cut off
    assert item.translation == c.bundle.target_tokenizer.detokenize([item.output_ids])[0]
    fig = insp.sentence_figure(c, item, marked)
    drawn = np.stack([np.stack([np.asarray(ax.images[0].get_array()) for ax in row])
                      for row in fig.heatmap_axes])
    assert drawn.shape == (2, 2, len(item.output_ids), len(source))
    np.testing.assert_allclose(drawn, expected, atol=1e-5)
    np.testing.assert_allclose(drawn.sum(-1), 1.0, atol=1e-4)  # rows are distributions
    assert fig.heatmap_axes[1][0].title.get_text() == "layer 1 head 0 (regularised)"
    labels = [t.get_text() for t in fig.heatmap_axes[1][0].get_xticklabels()]
    assert labels[-1] == "</s>" and labels[0] == "▁" + line.split()[0]


def test_user_head_on_cross_attention_without_selection_marks_every_pair():
  heads = [types.SimpleNamespace(head_name="mine", reads=(out.CROSS_ATTENTION,)),
           types.SimpleNamespace(head_name="price", reads=(out.ENCODER_SUMMARY,))]
  assert insp.regularised_pairs(heads, 1, 2) == {(0, 0): ["mine"], (0, 1): ["mine"]}


def _inspect(config, tmp_path, lines, count):
  path = tmp_path / "in.txt"
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")
  cfg = dataclasses.replace(config, mode="inspect", eval=dataclasses.replace(
      config.eval, input_file=str(path), inspect_lines=count))
  stdout = io.StringIO()
  with contextlib.redirect_stdout(stdout):
    modes.run_mode(cfg)
  return json.loads(stdout.getvalue().strip().splitlines()[-1])


def test_inspect_mode_writes_pictures_jsonl_and_index(config, tmp_path):
  lines = ["apple bird cloud door", "stone & <tiger>", "never drawn"]
  summary = _inspect(config, tmp_path, lines, 2)
  inspect_dir = os.path.join(config.workdir, "inspect")
  assert summary == {"kind": "inspect", "path": inspect_dir, "sentences": 2, "panels": 4,
                     "index": os.path.join(inspect_dir, "index.html")}
  assert sorted(os.listdir(inspect_dir)) == ["index.html", "inspect.jsonl", "sentence_001.png",
                                             "sentence_002.png"]
  assert not [p for p in os.listdir(config.workdir) if p.startswith(".inspect-")]
  records = [json.loads(l) for l in open(os.path.join(inspect_dir, "inspect.jsonl"))]
  assert [r["source"] for r in records] == lines[:2]
  for record in records:
    assert record["panels"] == 4 and record["regularised"] == [[1, 0]]
    assert set(record["predictions"]) == {"price/price_bucket", "domain/domain"}
    assert record["predictions"]["price/price_bucket"].split(" (")[0].isdigit()
    assert record["source_tokens"][-1] == "</s>"
    height, width, _ = matplotlib.image.imread(os.path.join(inspect_dir, record["image"])).shape
    assert width > 300 and height > 300
  index = open(os.path.join(inspect_dir, "index.html"), encoding="utf-8").read()
  assert index.count("<img ") == 2 and 'src="sentence_002.png"' in index
  assert "stone &amp; &lt;tiger&gt;" in index and "<tiger>" not in index
  assert "attention_entropy on L1H0" in index
  assert _inspect(config, tmp_path, lines, 1)["sentences"] == 1  # a rerun replaces the folder
  assert sorted(os.listdir(inspect_dir)) == ["index.html", "inspect.jsonl", "sentence_001.png"]


def test_inspect_mode_user_errors(config, tmp_path):
  with pytest.raises(UserError, match="--inspect_lines must be >= 1, got 0"):
    _inspect(config, tmp_path, ["apple"], 0)
  cfg = dataclasses.replace(config, mode="inspect", eval=dataclasses.replace(
      config.eval, input_file=str(tmp_path / "absent.txt")))
  with pytest.raises(UserError, match="absent.txt' does not exist"):
    modes.run_mode(cfg)


def _priced_validation_rows(c):
  """Examples with a price among the validation rows evaluation reads (the first N per source)."""
  limit = c.config.eval.max_eval_examples or None
  rows = [r for b in c.bundle.builders for r in b.rows("validation")[:limit]]
  return sum(1 for r in rows if not math.isnan(r["price"]))


def test_validation_images_reach_tensorboard(components, tmp_path):
  c = components
  sentences = insp.fixed_validation_sentences(c, 2)
  assert len(sentences) == 2 and all(sentences)
  writer = tf.summary.create_file_writer(str(tmp_path / "tb"))
  insp.write_validation_images(c, writer, 7, sentences)
  images = {}
  for name in os.listdir(tmp_path / "tb"):
    for event in tf.compat.v1.train.summary_iterator(str(tmp_path / "tb" / name)):
      for value in event.summary.value:
        width, height, png = tf.make_ndarray(value.tensor)[:3]
        images[value.tag] = (event.step, int(width), int(height), tf.image.decode_png(png).shape)
  # domain has no labelled validation example in this data, so no matrix is drawn for it
  assert sorted(images) == ["attention/sentence_0", "attention/sentence_1", "confusion/price"]
  for step, width, height, shape in images.values():
    assert step == 7 and shape[:2] == (height, width) and width > 100
  confusion = insp.validation_confusions(c)["price"]
  assert confusion.shape == (5, 5)  # the preset's 5 price buckets
  assert confusion.sum() == _priced_validation_rows(c) > 0
  names = insp.class_names(next(h for h in c.heads if h.head_name == "price"), 5)
  assert len(names) == 5 and names[0].startswith("<") and names[-1].startswith(">=")


def test_confusions_from_the_validation_just_run_equal_a_pass_of_their_own(components):
  """The training loop hands evaluate_split's head statistics to the pictures instead of running
  the validation split through the model a second time: same matrices."""
  from evaluation.evaluate import evaluate_split  # pylint: disable=import-outside-toplevel
  c = components
  totals = {}
  evaluate_split(c, c.config.eval, "validation", totals)
  from_eval = insp.confusions(totals)
  own = insp.validation_confusions(c)
  assert sorted(from_eval) == sorted(own) == ["price"]
  np.testing.assert_array_equal(from_eval["price"], own["price"])
