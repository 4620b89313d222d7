"""Greedy and beam search: cached == uncached, beam 1 == greedy, and a hand-made search space."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from bench import beam_speed
from configs.config import ModelConfig
from model import decoding, outputs as out
from model.seq2seq import build_model

SOURCE = tf.constant([[5, 6, 7, 8, 3, 0, 0], [9, 3, 0, 0, 0, 0, 0], [4, 4, 5, 5, 6, 6, 3]],
                     tf.int32)
A, B = 4, 5


class TableModel:
  """A fake Seq2Seq whose next-token distribution depends only on the previous token.

  From BOS: A 0.6, B 0.4. After A: EOS 0.4, A 0.3, B 0.3. After B: EOS 0.9, A 0.1. So greedy
  says "A EOS" (p = 0.24) while a beam of 2 finds "B EOS" (p = 0.36).
  """

  def __init__(self):
    table = np.full((6, 6), 1e-6)
    table[decoding.BOS, [A, B]] = [0.6, 0.4]
    table[A, [decoding.EOS, A, B]] = [0.4, 0.3, 0.3]
    table[B, [decoding.EOS, A]] = [0.9, 0.1]
    table[decoding.EOS, decoding.EOS] = 1.0
    self.table = tf.constant(np.log(table), tf.float32)

  def encode(self, source, training=False):
    mask = tf.cast(source > 0, tf.float32)
    return {out.ENCODER_OUTPUTS: mask[:, :, None], out.ENCODER_MASK: mask,
            out.ENCODER_SUMMARY: mask}

  def init_decode_state(self, encoded, max_length=None):
    return {"steps": tf.zeros_like(encoded[out.ENCODER_MASK][:, :1])}

  def decode_step(self, tokens, step, state, encoded):
    return tf.gather(self.table, tokens), {"steps": state["steps"] + 1.0}


def test_greedy_and_beam_on_a_table_by_hand():
  model, source = TableModel(), tf.constant([[7, 3], [8, 3]], tf.int32)
  np.testing.assert_array_equal(decoding.greedy_search(model, source, 10), [[A, 3], [A, 3]])
  np.testing.assert_array_equal(decoding.beam_search(model, source, 1, 0.0, 10), [[A, 3], [A, 3]])
  np.testing.assert_array_equal(decoding.beam_search(model, source, 2, 0.0, 10), [[B, 3], [B, 3]])
  np.testing.assert_array_equal(decoding.decode(model, source, 2, 0.6, 10), [[B, 3], [B, 3]])


def test_length_penalty_is_gnmt():
  np.testing.assert_allclose(decoding.gnmt_penalty(tf.constant([1, 7]), 0.5).numpy(),
                             [1.0, np.sqrt(2.0)], rtol=1e-6)
  assert decoding.max_output_length(SOURCE, 100).numpy() == 2 * 7 + 10
  assert decoding.max_output_length(SOURCE, 9).numpy() == 9


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


def test_decode_step_matches_teacher_forcing(model):
  target_in = tf.constant([[2, 5, 7, 4, 6], [2, 4, 4, 5, 7], [2, 6, 5, 7, 4]], tf.int32)
  encoded = model.encode(SOURCE, training=False)
  full = model.decode({"target_in": target_in}, encoded, training=False)["logits"].numpy()
  state = model.init_decode_state(encoded)
  for step in range(target_in.shape[1]):
    logits, state = model.decode_step(target_in[:, step], tf.constant(step), state, encoded)
    np.testing.assert_allclose(logits.numpy(), full[:, step], atol=1e-5, rtol=1e-5)


def test_cached_greedy_equals_uncached(model):
  cached = decoding.greedy_search(model, SOURCE, 12).numpy()
  uncached = decoding.greedy_search_uncached(model, SOURCE, 12).numpy()
  assert cached.shape[0] == 3 and 0 < cached.shape[1] <= 12
  assert max(len(set(row)) for row in cached) >= 3  # not one repeated token
  np.testing.assert_array_equal(cached, uncached)


def test_beam_of_one_equals_greedy(model):
  greedy = decoding.greedy_search(model, SOURCE, 12).numpy()
  np.testing.assert_array_equal(decoding.beam_search(model, SOURCE, 1, 0.0, 12).numpy(), greedy)
  np.testing.assert_array_equal(decoding.decode(model, SOURCE, 1, 0.6, 12).numpy(), greedy)


def test_traced_beam_search_ends_with_eos_or_at_the_limit(model):
  search = tf.function(lambda s: decoding.beam_search(model, s, 3, 0.6, 12),
                       input_signature=[tf.TensorSpec([None, None], tf.int32)])
  beams = search(SOURCE).numpy()
  assert beams.shape[0] == 3 and beams.shape[1] <= 12
  for row in beams:
    n = int(np.count_nonzero(row))
    assert n > 0 and (row[n - 1] == decoding.EOS or n == row.shape[0])
    assert (row[n:] == 0).all() and decoding.BOS not in row[:n]
    assert decoding.EOS not in row[:n - 1]


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


class LongOrShortModel(TableModel):
  """From BOS: A 0.6 then EOS (short, p = 0.6), or B 0.4 then C 0.95, EOS 0.95 (long, p = 0.361)."""

  def __init__(self):
    super().__init__()
    table = np.full((7, 7), 1e-9)
    table[decoding.BOS, [A, B]] = [0.6, 0.4]
    table[A, decoding.EOS] = 1.0
    table[B, 6] = 0.95
    table[6, decoding.EOS] = 0.95
    table[decoding.EOS, decoding.EOS] = 1.0
    self.table = tf.constant(np.log(table), tf.float32)


def test_length_penalty_lengthens_the_output():
  """Without a penalty the beam keeps the likelier short hypothesis; a strong GNMT penalty
  divides log-probabilities by ((5 + length) / 6) ** alpha and prefers the longer one."""
  model, source = LongOrShortModel(), tf.constant([[7, 3]], tf.int32)
  short = decoding.beam_search(model, source, 2, 0.0, 10).numpy()[0]
  long = decoding.beam_search(model, source, 2, 5.0, 10).numpy()[0]
  assert list(short[:2]) == [A, decoding.EOS]
  assert list(long[:3]) == [B, 6, decoding.EOS]
  assert np.count_nonzero(long) > np.count_nonzero(short)
