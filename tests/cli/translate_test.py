"""--mode=translate: token-budget batches sorted by length inside windows, output in input order,
input read lazily; the same translations as decoding every line in one batch."""
import dataclasses
import json
import random

import numpy as np
import tensorflow as tf

from evaluation import evaluate as ev
from tests_support import tiny_config
from training import loop, modes

SENTENCES = ["apple", "stone tiger umbrella valley window yellow zebra", "river ocean",
             "bird cloud door eagle forest", "night", "garden house island", "queen river stone",
             "apple bird cloud door eagle forest garden house island jungle", "tiger", "lemon"]


def test_token_batches_by_hand():
  lengths = [5, 1, 3, 3, 8, 2]  # sorted: 1(1) 5(2) 2(3) 3(3) 0(5) 4(8)
  assert ev.token_batches(lengths, 8) == [[1, 5], [2, 3], [0], [4]]  # 2*2, 2*3, 1*5, 1*8 tokens
  assert ev.token_batches(lengths, 0, max_sentences=4) == [[1, 5, 2, 3], [0, 4]]
  np.testing.assert_array_equal(ev.pad_rows([np.array([4, 3]), np.array([7])]),
                                [[4, 3], [7, 0]])


def test_stream_keeps_input_order_and_reads_lazily():
  rng = random.Random(0)
  lines = [" ".join(["w"] * rng.randint(1, 9)) + f" #{i}" for i in range(23)]
  consumed, shapes = [], []

  def source():
    for line in lines:
      consumed.append(line)
      yield line

  def encode(chunk):  # one id per word
    return [np.arange(1, len(s.split()) + 1, dtype=np.int32) for s in chunk]

  def decode(padded):
    shapes.append(padded.shape)
    return [f"{np.count_nonzero(row)} words" for row in padded]

  stream = ev.translate_stream(source(), encode, decode, batch_tokens=12, max_sentences=0,
                               window=5)
  first = next(stream)
  assert len(consumed) == 5  # the first window only: no waiting for the end of the input
  results = [first] + list(stream)
  assert [src for src, _ in results] == lines
  assert [out for _, out in results] == [f"{len(s.split())} words" for s in lines]
  assert all(rows * width <= 12 or rows == 1 for rows, width in shapes)
  assert len(shapes) > 5  # several batches per window: the budget was binding


def _one_batch(c, lines):
  """The previous path: every line in one batch, in input order (translations, head outputs)."""
  decoder = ev.make_decoder(c.model, c.config.eval)
  source = next(iter(c.bundle.text_dataset(lines, len(lines))))["source"]
  return (c.bundle.target_tokenizer.detokenize(decoder(source).numpy()),
          modes._head_predictions(c, source))


def test_translate_mode_matches_one_batch_in_input_order(tmp_path, copy_corpus, monkeypatch):
  config = tiny_config(tmp_path / "w", copy_corpus, False, train_steps=60, checkpoint_every=60)
  loop.train(config)
  lines = SENTENCES[:]
  random.Random(1).shuffle(lines)
  (tmp_path / "in.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
  monkeypatch.setattr(ev, "TRANSLATE_WINDOW_LINES", 4)  # three windows
  batches = []
  real = ev.token_batches
  monkeypatch.setattr(ev, "token_batches", lambda *a, **k: batches.append(real(*a, **k))
                      or batches[-1])
  outputs = {}
  for fmt in ("text", "jsonl"):
    run = dataclasses.replace(config, mode="translate", eval=dataclasses.replace(
        config.eval, input_file=str(tmp_path / "in.txt"), output_file=str(tmp_path / fmt),
        output_format=fmt, translate_batch_tokens=12, engine="tensorflow"))
    modes.run_mode(run)
    outputs[fmt] = (tmp_path / fmt).read_text(encoding="utf-8").splitlines()
  assert len(batches) == 6 and max(len(b) for b in batches) > 1  # windows of 4, 4, 2 (x 2)
  assert any(b != sorted(b) for b in batches)  # re-ordered by length inside a window
  expected, heads = _one_batch(modes.components_for_inference(
      dataclasses.replace(config, mode="evaluate")), lines)
  assert len(set(expected)) > 3  # distinct translations: the order check below can fail
  assert outputs["text"] == expected
  rows = [json.loads(line) for line in outputs["jsonl"]]
  assert [r["source"] for r in rows] == lines
  assert [r["translation"] for r in rows] == expected
  assert "price/price_bucket" in heads and "domain/domain" in heads
  for key, values in heads.items():  # head predictions follow their sentence too
    assert [r[key] for r in rows] == values, key
