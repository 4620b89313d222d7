"""Beam search with the incremental decoder state vs re-running the decoder on the whole prefix.

  python bench/beam_speed.py            # the default job's Transformer shape (docs/results.md)
  python bench/beam_speed.py --quick    # tiny sizes, seconds (tests)

Both searches are `model/decoding.py` (`beam_search` and `beam_search_uncached`), each traced
once by `tf.function`, on the same randomly initialised model and the same sources, timed
alternately (`--repeats` rounds, median kept) so that load changes on a shared machine hit both
alike. The EOS logit is suppressed, so every hypothesis runs to the length limit
min(--max_decode_length, 2 * source length + 10): the outputs are exactly that long. The last
stdout line is one JSON object (cached_s, uncached_s, ratio = uncached / cached, identical).
"""
import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from configs.config import ModelConfig  # noqa: E402
from model import decoding, outputs as out  # noqa: E402
from model.seq2seq import build_model  # noqa: E402

FULL = dict(d_model=256, num_layers=3, num_heads=4, ffn_dim=1024, vocab=4000, batch=16, beam=4,
            source_length=20, max_decode_length=40, repeats=3)
QUICK = dict(d_model=32, num_layers=1, num_heads=2, ffn_dim=64, vocab=64, batch=2, beam=2,
             source_length=12, max_decode_length=32, repeats=1)


class NoEos:
  """A Seq2Seq whose EOS logit is pushed to -1e9 (decode and decode_step): searches run to the
  length limit, so both variants do the same, known number of steps."""

  def __init__(self, model):
    self.model = model
    self.beam_invariant_state = getattr(model, "beam_invariant_state", ())

  def _suppress(self, logits):
    return logits + tf.one_hot(decoding.EOS, tf.shape(logits)[-1]) * -1e9

  def encode(self, source, training=False):
    return self.model.encode(source, training=training)

  def decode(self, batch, encoded, training=False):
    outputs = self.model.decode(batch, encoded, training=training)
    return dict(outputs, **{out.LOGITS: self._suppress(outputs[out.LOGITS])})

  def init_decode_state(self, encoded, max_length=None):
    return self.model.init_decode_state(encoded, max_length)

  def decode_step(self, tokens, step, state, encoded):
    logits, state = self.model.decode_step(tokens, step, state, encoded)
    return self._suppress(logits), state


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--quick", action="store_true", help="tiny model, one repeat (tests)")
  for key, value in FULL.items():
    p.add_argument(f"--{key}", type=int, default=None, help=f"default {value} ({QUICK[key]} "
                   "with --quick)")
  p.add_argument("--model", default="transformer", help="transformer or rnn")
  p.add_argument("--seed", type=int, default=0)
  args = p.parse_args(argv)
  for key, value in (QUICK if args.quick else FULL).items():
    if getattr(args, key) is None:
      setattr(args, key, value)
  return args


def _timed(fn, source) -> float:
  start = time.perf_counter()
  fn(source).numpy()
  return time.perf_counter() - start


def run(argv=None) -> dict:
  a = parse_args(argv)
  keras.utils.set_random_seed(a.seed)
  config = ModelConfig(model=a.model, d_model=a.d_model, num_layers=a.num_layers,
                       num_heads=a.num_heads, ffn_dim=a.ffn_dim, dropout=0.0)
  model = NoEos(build_model(config, a.vocab, a.vocab))
  rng = np.random.default_rng(a.seed)
  source = np.concatenate([rng.integers(4, a.vocab, [a.batch, a.source_length - 1]),
                           np.full([a.batch, 1], decoding.EOS)], 1).astype(np.int32)
  source = tf.constant(source)
  spec = [tf.TensorSpec([None, None], tf.int32)]
  searches = {
      "cached": tf.function(lambda s: decoding.beam_search(
          model, s, a.beam, 0.6, a.max_decode_length), input_signature=spec),
      "uncached": tf.function(lambda s: decoding.beam_search_uncached(
          model, s, a.beam, 0.6, a.max_decode_length), input_signature=spec)}
  ids = {name: fn(source).numpy() for name, fn in searches.items()}  # traces; untimed
  times = {name: [] for name in searches}
  for round_ in range(a.repeats):
    for name, fn in searches.items():
      times[name].append(_timed(fn, source))
    print(f"round {round_ + 1}/{a.repeats}: " + ", ".join(
        f"{k} {v[-1]:.3f} s" for k, v in times.items()), file=sys.stderr)
  cached, uncached = (statistics.median(times[k]) for k in ("cached", "uncached"))
  return {"cached_s": round(cached, 4), "uncached_s": round(uncached, 4),
          "ratio": round(uncached / cached, 2),
          "identical": bool(np.array_equal(ids["cached"], ids["uncached"])),
          "output_length": int(ids["cached"].shape[1]), "batch": a.batch, "beam": a.beam,
          "source_length": a.source_length, "model": a.model, "d_model": a.d_model,
          "num_layers": a.num_layers, "vocab": a.vocab, "repeats": a.repeats,
          "times": {k: [round(t, 4) for t in v] for k, v in times.items()}}


def main(argv=None) -> int:
  print(json.dumps(run(argv), sort_keys=True))
  return 0


if __name__ == "__main__":
  sys.exit(main())
