"""Head losses on tiny tensors, against numbers derived by hand."""
import math

import numpy as np
import pytest
import tensorflow as tf

from heads import (attention_entropy, bag_of_words, coverage, diagonal, guided_alignment,
                   head_disagreement, length_ratio, price, translation)
from heads.attention import AttentionOptions
from heads.base import HeadContext
from heads.classifier import classification_results, masked_cross_entropy

CTX = HeadContext(vocab_size=3, d_model=4, summary_dim=4, num_layers=1, num_attention_heads=2)


def _attention_outputs(p, tmask, smask):
  return {"cross_attention": [tf.constant(p, tf.float32)],
          "target_mask": tf.constant(tmask, tf.float32),
          "encoder_mask": tf.constant(smask, tf.float32)}


def test_entropy_1x2x3_with_one_padded_position():
  """Rows (0.5, 0.5, 0) and (1, 0, 0): entropies ln 2 and 0; normaliser 2 target positions."""
  head = attention_entropy.AttentionEntropy(attention_entropy.EntropyOptions(heads="0"), CTX)
  p = [[[[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]] * 2]
  term = head.loss(_attention_outputs(p, [[1, 1]], [[1, 1, 0]]), {}, training=True)
  assert float(term.total) == pytest.approx(math.log(2), rel=1e-6)
  assert float(term.count) == 2.0


def test_entropy_per_head_terms_and_sign():
  head = attention_entropy.AttentionEntropy(
      attention_entropy.EntropyOptions(reduce="per_head", sign=-1.0), CTX)
  p = [[[[0.5, 0.5, 0.0]], [[0.25, 0.75, 0.0]]]]
  terms = head.loss_terms(_attention_outputs(p, [[1]], [[1, 1, 0]]), {}, training=True)
  assert sorted(terms) == ["attention_entropy/l0h0", "attention_entropy/l0h1"]
  h1 = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
  assert float(terms["attention_entropy/l0h1"].total) == pytest.approx(-h1, rel=1e-6)


def test_coverage_by_hand():
  """Source 0 gets 0.9 + 0.8 = 1.7 in total -> relu(0.7); source 1 gets 0.3 -> 0."""
  head = coverage.Coverage(AttentionOptions(heads="0"), CTX)
  p = [[[[0.9, 0.1], [0.8, 0.2]]] * 2]
  term = head.loss(_attention_outputs(p, [[1, 1]], [[1, 1]]), {}, training=True)
  assert float(term.total) == pytest.approx(0.7, rel=1e-6)


def test_diagonal_by_hand():
  """Anti-diagonal attention on T = S = 2: |0/2 - 1/2| + |1/2 - 0/2| = 1; diagonal gives 0."""
  head = diagonal.Diagonal(AttentionOptions(heads="0"), CTX)
  anti = head.loss(_attention_outputs([[[[0., 1.], [1., 0.]]] * 2], [[1, 1]], [[1, 1]]), {}, True)
  diag = head.loss(_attention_outputs([[[[1., 0.], [0., 1.]]] * 2], [[1, 1]], [[1, 1]]), {}, True)
  assert float(anti.total) == pytest.approx(1.0) and float(diag.total) == 0.0


def test_head_disagreement_identical_heads_is_one_per_position():
  head = head_disagreement.HeadDisagreement(AttentionOptions(), CTX)
  p = [[[[0.3, 0.7], [0.5, 0.5]]] * 2]
  term = head.loss(_attention_outputs(p, [[1, 1]], [[1, 1]]), {}, training=True)
  assert float(term.total) == pytest.approx(2.0, rel=1e-6)  # cosine 1 at each of 2 positions


def test_translation_label_smoothed_ce_2x3_by_hand():
  """p = (1/4, 1/2, 1/4) everywhere. Label 1: nll = ln 2; uniform part = (2 ln 4 + ln 2) / 3.
  Label 2: nll = ln 4. eps = 0.1. Pads (label 0) are not counted: normaliser 3."""
  logits = tf.math.log(tf.constant([[[1., 2., 1.]] * 3] * 2))
  labels = tf.constant([[1, 2, 0], [1, 0, 0]])
  head = translation.TranslationHead(translation.TranslationOptions(label_smoothing=0.1), CTX)
  term = head.loss({"logits": logits}, {"target_out": labels}, training=True)
  uniform = (2 * math.log(4) + math.log(2)) / 3
  expected = 2 * (0.9 * math.log(2) + 0.1 * uniform) + (0.9 * math.log(4) + 0.1 * uniform)
  assert float(term.total) == pytest.approx(expected, rel=1e-6) and float(term.count) == 3


def test_price_buckets_and_masked_ce_on_two_examples():
  """Edges (100, 200): 150 -> bucket 1, NaN -> -1 (masked). CE of logits (0, ln 3, 0) for
  class 1 = -ln(3/5)."""
  buckets = price.bucketize(tf.constant([150.0, math.nan, 250.0, 100.0]), tf.constant([100., 200.]))
  assert buckets.numpy().tolist() == [1, -1, 2, 1]
  total, count = masked_cross_entropy(tf.constant([[0.0, math.log(3), 0.0], [5.0, 5.0, 5.0]]),
                                      tf.constant([1, -1]))
  assert float(total) == pytest.approx(-math.log(0.6), rel=1e-6) and float(count) == 1.0


def test_price_edges_from_training_quantiles():
  edges = price.price_edges(price.PriceOptions(buckets=4), np.array([10., 20, 30, 40, 50]))
  assert edges.tolist() == pytest.approx([20.0, 30.0, 40.0])


def test_classification_results_by_hand():
  """Confusion [[2, 1], [0, 1]]: accuracy 3/4; F1 class 0 = 4/5, class 1 = 2/3."""
  results = classification_results({"confusion": np.array([[2, 1], [0, 1]])})
  assert results["accuracy"] == pytest.approx(0.75)
  assert results["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
  assert results["majority_baseline"] == pytest.approx(0.75)


def _zero_output_layer(dense, bias):
  dense.kernel.assign(tf.zeros_like(dense.kernel))
  dense.bias.assign(tf.constant(bias, tf.float32))


def test_price_head_loss_buckets_in_graph_two_examples():
  """Edges (100, 200), output bias (0, ln 3, 0), zero kernel: price 150 -> bucket 1, so
  CE = -ln(3 / 5); the NaN price is masked. Normaliser 1."""
  head = price.PriceHead(price.PriceOptions(hidden=(), edges=(100.0, 200.0)), CTX)
  _zero_output_layer(head.mlp.out, [0.0, math.log(3.0), 0.0])
  batch = {"price": tf.constant([150.0, math.nan])}
  term = head.loss({"encoder_summary": tf.ones([2, 4])}, batch, training=True)
  assert float(term.total) == pytest.approx(-math.log(0.6), rel=1e-6)
  assert float(term.count) == 1.0
  predicted = head.predict({"encoder_summary": tf.ones([2, 4])})["price_bucket"]
  assert predicted.numpy().tolist() == [1, 1]


def test_length_ratio_by_hand():
  """Prediction 0; example 0: 3 target / 4 source tokens -> error ln(4/3); example 1 has no
  translation (masked)."""
  head = length_ratio.LengthRatioHead(length_ratio.LengthRatioOptions(hidden=()), CTX)
  _zero_output_layer(head.mlp.out, [0.0])
  batch = {"source": tf.constant([[5, 6, 7, 3], [8, 3, 0, 0]]),
           "target_out": tf.constant([[5, 6, 3], [0, 0, 0]])}
  term = head.loss({"encoder_summary": tf.ones([2, 4])}, batch, training=True)
  assert float(term.total) == pytest.approx(math.log(4 / 3) ** 2, rel=1e-5)
  assert float(term.count) == 1.0


def test_bag_of_words_by_hand():
  """V = 5, ids 0 (pad) and 3 (EOS) ignored; logits 0 -> each kept id costs ln 2 whether present
  or not: 3 ln 2 for the translated example; the untranslated one is masked."""
  context = HeadContext(vocab_size=5, d_model=4, summary_dim=4, num_layers=1,
                        num_attention_heads=1)
  head = bag_of_words.BagOfWordsHead(bag_of_words.BagOfWordsOptions(), context)
  _zero_output_layer(head.projection, [0.0] * 5)
  batch = {"target_out": tf.constant([[4, 1, 3], [0, 0, 0]])}
  term = head.loss({"encoder_summary": tf.ones([2, 4])}, batch, training=True)
  assert float(term.total) == pytest.approx(3 * math.log(2), rel=1e-6)
  assert float(term.count) == 1.0
  assert head.multi_hot(batch["target_out"]).numpy()[0].tolist() == [0, 1, 0, 0, 1]


def test_guided_alignment_by_hand():
  """T = 2, S = 3. Links 0-0 (target 0 <- source 0), 2-1 and 1-1 (target 1 <- sources 1, 2,
  1/2 each); 5-0 is outside S and dropped. CE = -ln .5 - (ln .2 + ln .6) / 2 over 2 positions."""
  context = HeadContext(vocab_size=3, d_model=4, summary_dim=4, num_layers=1,
                        num_attention_heads=1)
  head = guided_alignment.GuidedAlignment(guided_alignment.GuidedAlignmentOptions(), context)
  p = [[[[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]]]]
  outputs = _attention_outputs(p, [[1, 1]], [[1, 1, 1]])
  term = head.loss(outputs, {"alignment": tf.constant(["0-0 2-1 1-1 5-0"])}, training=True)
  expected = -math.log(0.5) - 0.5 * (math.log(0.2) + math.log(0.6))
  assert float(term.total) == pytest.approx(expected, rel=1e-6) and float(term.count) == 2.0
  empty = head.loss(outputs, {"alignment": tf.constant([""])}, training=True)
  assert float(empty.total) == 0.0 and float(empty.count) == 0.0


def test_price_regression_huber_on_log1p_and_mae_in_eur():
  """Prediction 0 (log1p space). Targets 0.5 and 3 -> Huber(delta 1) 0.125 and 2.5; NaN masked.
  MAE in EUR: (e^0.5 - 1 + e^3 - 1) / 2."""
  head = price.PriceHead(price.PriceOptions(hidden=(), mode="regression"), CTX)
  _zero_output_layer(head.mlp.out, [0.0])
  prices = [math.exp(0.5) - 1, math.exp(3.0) - 1, math.nan]
  outputs, batch = {"encoder_summary": tf.ones([3, 4])}, {"price": tf.constant(prices)}
  term = head.loss(outputs, batch, training=True)
  assert float(term.total) == pytest.approx(2.625, rel=1e-5) and float(term.count) == 2.0
  stats = {k: v.numpy() for k, v in head.metric_stats(outputs, batch).items()}
  expected_mae = (prices[0] + prices[1]) / 2
  assert head.metric_results(stats)["mae"] == pytest.approx(expected_mae, rel=1e-5)
  assert head.predict(outputs)["price"].numpy().tolist() == [0.0, 0.0, 0.0]


def test_domain_head_loss_metrics_and_predictions_by_hand():
  """No hidden layer, output kernel [[1, 0, 0], [0, 1, 0]], bias 0. Summaries (0, 0) -> logits
  (0, 0, 0): CE ln 3 for label 2; (2, 0) -> logits (2, 0, 0): CE ln(1 + 2 e^-2) for label 0;
  the third example is unlabelled (-1). Predictions: argmax takes the first maximum -> 0, 0, 1."""
  from heads import domain  # pylint: disable=import-outside-toplevel
  context = HeadContext(vocab_size=3, d_model=2, summary_dim=2, num_layers=1,
                        num_attention_heads=1, label_info={"domain": ("a", "b", "c")})
  head = domain.DomainHead(domain.DomainOptions(hidden=(), dropout=0.0), context)
  head.mlp.out.kernel.assign(tf.constant([[1.0, 0, 0], [0, 1, 0]]))
  head.mlp.out.bias.assign(tf.zeros([3]))
  outputs = {"encoder_summary": tf.constant([[0.0, 0.0], [2.0, 0.0], [0.0, 5.0]])}
  batch = {"domain": tf.constant([2, 0, -1])}
  term = head.loss(outputs, batch, training=True)
  assert float(term.total) == pytest.approx(math.log(3) + math.log(1 + 2 * math.exp(-2)), rel=1e-6)
  assert float(term.count) == 2.0
  stats = head.metric_stats(outputs, batch)
  np.testing.assert_array_equal(stats["confusion"].numpy(), [[1, 0, 0], [0, 0, 0], [1, 0, 0]])
  assert head.metric_results({"confusion": stats["confusion"].numpy()})["accuracy"] == 0.5
  assert head.predict(outputs)["domain"].numpy().tolist() == [0, 0, 1]
  other = domain.DomainHead(domain.DomainOptions(hidden=(), dropout=0.0, label="catalog"), context)
  assert other.labels == ("catalog",)


def test_rdrop_symmetric_kl_by_hand():
  """p = softmax(0, 0) = (1/2, 1/2), q = softmax(ln 3, 0) = (3/4, 1/4):
  KL(p||q) + KL(q||p) = sum (p - q)(ln p - ln q) = 1/4 ln(3/2) + 1/4 ln 2 = 1/4 ln 3; R-Drop's
  term is half of it. The second position is padding (mask 0) and does not count."""
  from heads import rdrop  # pylint: disable=import-outside-toplevel
  from model import outputs as out  # pylint: disable=import-outside-toplevel
  head = rdrop.RDropHead(rdrop.RDropOptions(), CTX)
  first = tf.constant([[[0.0, 0.0], [5.0, -5.0]]])
  second = tf.constant([[[math.log(3.0), 0.0], [-5.0, 5.0]]])
  outputs = {out.LOGITS: first, out.SECOND_PASS: {out.LOGITS: second},
             out.TARGET_MASK: tf.constant([[1.0, 0.0]])}
  term = head.loss(outputs, {}, training=True)
  assert float(term.total) == pytest.approx(0.125 * math.log(3.0), rel=1e-6)
  assert float(term.count) == 1.0
  same = dict(outputs, **{out.SECOND_PASS: {out.LOGITS: first}})
  assert float(head.loss(same, {}, training=True).total) == 0.0
