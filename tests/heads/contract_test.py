"""Every registered head against the Head contract, on synthetic outputs (no model needed).

For a Transformer-like context (2 layers x 2 heads) and an RNN-like one (1 x 1): the head builds,
gives finite float32 losses, has gradients to its own variables and to every output it reads,
and gives total 0 / count 0 with finite gradients when all its labels are missing.
"""
import numpy as np
import pytest
import tensorflow as tf

import heads  # noqa: F401  (registers the built-ins)
from configs.config import HeadSpec
from configs.errors import UserError
from heads import synthetic
from heads.base import HeadContext, safe_mean
from heads.registry import registered_heads
from heads.spec import build_heads
from model import outputs as out

LABEL_INFO = {"price": np.array([30.0, 60, 90, 120, 200, 400]), "domain": ("a", "b", "c")}
CONTEXTS = {
    "transformer": HeadContext(vocab_size=11, d_model=6, summary_dim=6, num_layers=2,
                               num_attention_heads=2, label_info=LABEL_INFO, seed=3),
    "rnn": HeadContext(vocab_size=11, d_model=6, summary_dim=12, num_layers=1,
                       num_attention_heads=1, label_info=LABEL_INFO, seed=3),
}
MASKS = (out.ENCODER_MASK, out.TARGET_MASK)


def _build(name, context):
  specs = [] if name == "translation" else [HeadSpec(name, (("weight", "1.0"),))]
  return build_heads(specs, context)[-1]


def _flat(outputs, keys):
  """The float tensors under `keys` (cross_attention expanded), to watch on a tape."""
  tensors = []
  for key in keys:
    value = outputs[key]
    if isinstance(value, dict):  # a second pass: its float outputs
      value = [v for k, v in value.items() if k not in MASKS]
    tensors.extend(value if isinstance(value, list) else [value])
  return tensors


def _loss_and_grads(head, outputs, batch, sources):
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(sources)
    terms = head.loss_terms(outputs, batch, training=True)
    total = tf.add_n([safe_mean(t) for t in terms.values()])
  own = [v.value for v in head.trainable_variables]
  return terms, tape.gradient(total, own), tape.gradient(total, sources)


def _all_finite(grads):
  return all(np.all(np.isfinite(tf.convert_to_tensor(g).numpy())) for g in grads if g is not None)


@pytest.mark.parametrize("arch", sorted(CONTEXTS))
@pytest.mark.parametrize("name", sorted(registered_heads()))
def test_head_contract(arch, name):
  context = CONTEXTS[arch]
  if (arch, name) == ("rnn", "head_disagreement"):
    with pytest.raises(UserError, match="needs at least 2"):
      _build(name, context)
    return
  head = _build(name, context)
  assert head.head_name == name
  doc = type(head).__doc__
  assert all(word in doc for word in ("Reads:", "Label", "Normaliser")), doc
  outputs = synthetic.synthetic_outputs(context)
  sources = _flat(outputs, [k for k in head.reads if k not in MASKS])
  assert sources, f"{name} reads no float output"
  batch = synthetic.synthetic_batch(context, head.labels)
  terms, own_grads, source_grads = _loss_and_grads(head, outputs, batch, sources)
  for term_name, term in terms.items():
    assert term_name.split("/")[0] == name
    assert term.total.dtype == tf.float32 and np.isfinite(float(term.total)), term_name
    assert float(term.count) > 0, term_name
  assert all(g is not None for g in own_grads) and _all_finite(own_grads)
  if own_grads:
    assert any(np.any(tf.convert_to_tensor(g).numpy()) for g in own_grads)
  assert _all_finite(source_grads)
  assert any(g is not None and np.any(g.numpy()) for g in source_grads), "no gradient to outputs"

  missing = synthetic.synthetic_batch(context, head.labels, missing=True)
  terms, own_grads, source_grads = _loss_and_grads(
      head, synthetic.missing_outputs(outputs), missing, sources)
  for term in terms.values():
    assert float(term.total) == 0.0 and float(term.count) == 0.0
  assert _all_finite(own_grads) and _all_finite(source_grads)

  stats = head.metric_stats(outputs, batch)
  results = head.metric_results({k: np.asarray(v) for k, v in stats.items()})
  assert all(np.isfinite(v) for v in results.values())
  for key, value in head.predict(outputs).items():
    assert value.shape[0] == synthetic.BATCH, key


def test_synthetic_attention_is_a_masked_distribution():
  attention = synthetic.synthetic_outputs(CONTEXTS["transformer"])[out.CROSS_ATTENTION]
  probs = attention[0].numpy()
  np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
  assert np.all(probs[1, :, :, 2:] == 0.0)  # example 1 has 2 real source tokens
  assert not np.allclose(probs[:, 0], probs[:, 1])  # heads differ (head_disagreement < 1)
