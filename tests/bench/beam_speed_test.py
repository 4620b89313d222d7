"""Cached (incremental) beam search returns exactly the ids of the uncached one, and
bench/beam_speed.py --quick reports its JSON contract. No timing thresholds."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from bench import beam_speed
from configs.config import ModelConfig
from model import decoding
from model.seq2seq import build_model

SOURCE = tf.constant([[5, 6, 7, 8, 3, 0, 0], [9, 3, 0, 0, 0, 0, 0], [4, 4, 5, 5, 6, 6, 3]],
                     tf.int32)


@pytest.fixture(scope="module", params=["transformer", "rnn"])
def model(request):
  keras.utils.set_random_seed(0)
  config = ModelConfig(model=request.param, d_model=16, num_layers=2, num_heads=2, ffn_dim=32,
                       dropout=0.0, tie_embeddings=False)
  model = build_model(config, 12, 8)  # a small target vocabulary makes EOS likely
  for variable in model.trainable_weights:  # sharper distributions: less repetitive outputs
    if len(variable.shape) == 2:
      variable.assign(variable * 3.0)
  return model


@pytest.mark.parametrize("beam", [1, 3])
def test_cached_beam_search_equals_uncached(model, beam):
  cached = decoding.beam_search(model, SOURCE, beam, 0.6, 12).numpy()
  uncached = decoding.beam_search_uncached(model, SOURCE, beam, 0.6, 12).numpy()
  assert cached.shape[0] == 3 and 0 < cached.shape[1] <= 12
  assert len(set(cached[cached != 0].tolist())) >= 2  # not one repeated token everywhere
  np.testing.assert_array_equal(cached, uncached)


def test_cached_equals_uncached_to_the_length_limit_without_eos(model):
  """EOS suppressed: 12 steps each, every beam reordered at every step."""
  no_eos = beam_speed.NoEos(model)
  cached = decoding.beam_search(no_eos, SOURCE, 3, 0.6, 12).numpy()
  assert cached.shape == (3, 12) and decoding.EOS not in cached
  np.testing.assert_array_equal(cached,
                                decoding.beam_search_uncached(no_eos, SOURCE, 3, 0.6, 12).numpy())


def test_quick_bench_reports_the_contract(capsys):
  assert beam_speed.main(["--quick"]) == 0
  result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert result["identical"] is True
  assert result["output_length"] == 32  # min(32, 2 * 12 + 10): EOS never ends a hypothesis
  assert result["cached_s"] > 0 and result["uncached_s"] > 0
  assert result["ratio"] == pytest.approx(result["uncached_s"] / result["cached_s"], rel=0.02)
