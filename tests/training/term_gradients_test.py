"""Per-term gradients over the weights (issue 18): the row split is exact, and what acts on them.

Listing rows carry a price and no translation target; sentence pairs carry a target and no
price. The step runs price on its rows and translation on its rows (about one joint pass); the
gradients must equal each term's gradient on the whole batch.
"""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from heads.spec import parse_heads_spec
from tests_support import mixed_batch as _mixed_batch, mixed_batches as _mixed_batches
from tests_support import term_components, tiny_config
from training import combined_gradients, term_gradients
from training.components import build_components
from training.step import head_losses, make_train_step, trainable_variables


def _components(tmp_path, corpus, heads="price:dropout=0", **train):
  return term_components(tmp_path, corpus, heads, **train)


def _full_batch_gradients(c, batch, variables):
  """Each term's gradient from one forward pass over the whole batch (the reference)."""
  with tf.GradientTape(persistent=True) as tape:
    outputs = c.model(batch, training=True)
    losses, _, _ = head_losses(outputs, c.heads, batch, training=True)
  grads = {n: tape.gradient(loss, variables) for n, loss in losses.items()}
  return grads, losses


def test_row_split_gradients_equal_full_batch_gradients(tmp_path, copy_corpus):
  c = _components(tmp_path, copy_corpus, "price:dropout=0;bag_of_words;domain;attention_entropy")
  assert [term_gradients.row_keys(h) for h in c.heads] == [
      ("target_out",), ("price",), ("target_out",), ("domain",), ("target_out",)]
  groups = term_gradients.row_groups(c.heads)
  assert {g: [h.head_name for h in hs] for g, hs in groups.items()} == {
      "sentence_pairs": ["translation", "bag_of_words", "domain", "attention_entropy"],
      "listings": ["price"]}
  batch = _mixed_batch(c)
  variables = trainable_variables(c.model, c.heads, c.combiner)
  split, losses, _, counts = term_gradients.term_gradients(c.model, c.heads, (batch,), variables)
  reference, ref_losses = _full_batch_gradients(c, batch, variables)
  assert float(counts["price"]) == float(np.isfinite(batch["price"].numpy()).sum())
  compared = 0
  for name in ("translation", "price", "bag_of_words", "domain", "attention_entropy"):
    assert float(losses[name]) == pytest.approx(float(ref_losses[name]), rel=1e-5)
    for g, r, v in zip(split[name], reference[name], variables):
      assert (g is None) == (r is None), (name, v.path)
      if g is not None:
        np.testing.assert_allclose(g.numpy(), tf.convert_to_tensor(r).numpy(), rtol=1e-4,
                                   atol=1e-6, err_msg=f"{name} {v.path}")
        compared += 1
  assert compared > 20
  shared = combined_gradients.shared_positions(split, tuple(split))
  # translation and price meet on the encoder weights (and the source embedding) ...
  assert any("encoder" in variables[j].path for j in shared)
  # ... where their gradients are not orthogonal: there is something for pcgrad to act on.
  dot = sum(float(tf.reduce_sum(split["translation"][j] * split["price"][j])) for j in shared
            if split["price"][j] is not None)
  assert dot != 0.0


def test_pcgrad_differs_from_fixed_on_row_disjoint_terms(tmp_path, copy_corpus):
  """At the boundary these terms never meet and pcgrad trained bit-identically to fixed
  (boundary_test.py); over the weights it projects where they conflict."""
  c = _components(tmp_path, copy_corpus)
  variables = trainable_variables(c.model, c.heads, c.combiner)
  names = c.term_names
  for batch in _mixed_batches(c):  # the first batch whose two terms conflict on shared weights
    grads, losses, weights, _ = term_gradients.term_gradients(c.model, c.heads, (batch,),
                                                              variables)
    shared = combined_gradients.shared_positions(grads, names)
    dot = sum(float(tf.reduce_sum(grads["translation"][j] * grads["price"][j])) for j in shared)
    if dot < 0.0:
      break
  assert dot < 0.0, "no batch where the two terms conflict on the shared weights"
  results = {}
  for name in ("fixed", "pcgrad"):
    combiner = _combiner(name, names)
    combined, _, _ = combined_gradients.combine_terms(combiner, losses, weights, grads, variables)
    results[name] = combined
  differ = [j for j in shared
            if not np.allclose(results["fixed"][j].numpy(), results["pcgrad"][j].numpy())]
  assert differ, "pcgrad acted like fixed on conflicting shared weights"
  # Projection keeps translation (the main task) intact: pcgrad's G . g_translation is the
  # fixed sum's minus the removed conflict, and the price part now has no component against it.
  g_t = [grads["translation"][j] for j in shared]
  price_part = [results["pcgrad"][j] - g for j, g in zip(shared, g_t)]
  assert sum(float(tf.reduce_sum(a * b)) for a, b in zip(price_part, g_t)) == pytest.approx(
      0.0, abs=1e-5 * sum(float(tf.reduce_sum(g * g)) for g in g_t))


def _combiner(name, names, **kwargs):
  from training.combine import get_combiner_class  # pylint: disable=import-outside-toplevel
  return get_combiner_class(name)(names, **kwargs)


def test_fixed_through_term_gradients_equals_the_summed_step(tmp_path, copy_corpus):
  """The per-term path with nothing to change (fixed, no clip) gives the summed gradient."""
  c = _components(tmp_path, copy_corpus, "price:dropout=0;attention_entropy", combiner="fixed")
  batch = _mixed_batch(c)
  variables = trainable_variables(c.model, c.heads, c.combiner)
  grads, losses, weights, _ = term_gradients.term_gradients(c.model, c.heads, (batch,), variables)
  combined, total, _ = combined_gradients.combine_terms(c.combiner, losses, weights, grads,
                                                        variables)
  with tf.GradientTape() as tape:
    outputs = c.model(batch, training=True)
    ref_losses, ref_weights, _ = head_losses(outputs, c.heads, batch, training=True)
    ref_total, _ = c.combiner.combine(ref_losses, ref_weights)
  reference = tape.gradient(ref_total, variables)
  assert float(total) == pytest.approx(float(ref_total), rel=1e-5)
  for g, r in zip(combined, reference):
    assert (g is None) == (r is None)
    if g is not None:
      np.testing.assert_allclose(g.numpy(), tf.convert_to_tensor(r).numpy(), rtol=1e-4,
                                 atol=1e-6)


def test_per_term_clipping_by_hand():
  """g_a = (3, 4) (norm 5), g_b = (0.6, 0.8) (norm 1), weight of a 2 (weighted norm 10), clip 2:
  g_a is scaled by 2/10 -> (0.6, 0.8), weighted (1.2, 1.6) (norm 2); b (norm 1 <= 2) is
  untouched; sum (1.8, 2.4). A global clip of the weighted sum (6.6, 8.8) (norm 11) would have
  shrunk b to 2/11 of itself."""
  grads = {"a": [tf.constant([3.0, 4.0])], "b": [tf.constant([0.6, 0.8])]}
  clipped = combined_gradients.clip_terms(grads, {"a": 2.0, "b": 1.0}, 2.0)
  assert clipped["a"][0].numpy().tolist() == pytest.approx([0.6, 0.8])
  assert clipped["b"][0].numpy().tolist() == pytest.approx([0.6, 0.8])
  combiner = _combiner("fixed", ["a", "b"], term_clip_norm=2.0)
  variables = [tf.Variable([0.0, 0.0])]
  losses = {"a": tf.constant(1.0), "b": tf.constant(1.0)}
  combined, total, _ = combined_gradients.combine_terms(combiner, losses, {"a": 2.0, "b": 1.0},
                                                        grads, variables)
  assert combined[0].numpy().tolist() == pytest.approx([1.2 + 0.6, 1.6 + 0.8])
  assert float(total) == pytest.approx(3.0)
  zero = combined_gradients.clip_terms({"a": [tf.zeros([2])]}, {"a": 1.0}, 1.0)
  assert zero["a"][0].numpy().tolist() == [0.0, 0.0]  # a zero gradient stays zero, not NaN


def test_step_with_term_gradients_applies_once(tmp_path, copy_corpus):
  """metabalance + per-term clipping through make_train_step: one apply (iterations + 1)."""
  config = tiny_config(tmp_path / "w", copy_corpus, True, precision="float32",
                       combiner="metabalance", clip_per_term=True)
  c = build_components(dataclasses.replace(config, heads=parse_heads_spec("price:dropout=0")))
  assert c.optimizer.global_clipnorm is None  # the clip moved into the combiner
  assert c.combiner.term_clip_norm == 1.0
  batch = _mixed_batch(c)
  step = make_train_step(c.model, c.heads, c.combiner, c.optimizer)
  before = [v.numpy().copy() for v in c.model.trainable_variables]
  result = step(batch)
  assert int(c.optimizer.iterations.numpy()) == 1 and bool(result["finite"])
  assert float(tf.reduce_max(c.combiner.norms)) > 0  # balancing state moved
  assert any(not np.array_equal(a, v.numpy()) for a, v in zip(before, c.model.trainable_variables))
  step(batch)
  assert int(c.optimizer.iterations.numpy()) == 2


def test_sgd_step_equals_the_combined_gradient(tmp_path, copy_corpus):
  """With SGD(lr=1) and no clip, the weights move by exactly the per-term combination."""
  c = _components(tmp_path, copy_corpus, clip_norm=0.0, combiner="pcgrad")
  batch = _mixed_batch(c)
  variables = trainable_variables(c.model, c.heads, c.combiner)
  grads, losses, weights, _ = term_gradients.term_gradients(c.model, c.heads, (batch,), variables)
  expected, _, _ = combined_gradients.combine_terms(c.combiner, losses, weights, grads, variables)
  before = [v.numpy().copy() for v in variables]
  optimizer = keras.optimizers.SGD(1.0)
  optimizer.build(variables)
  make_train_step(c.model, c.heads, c.combiner, optimizer)(batch)
  for b, v, g in zip(before, variables, expected):
    if g is not None:
      np.testing.assert_allclose(b - v.numpy(), g.numpy(), rtol=1e-4, atol=1e-6)


def test_gradnorm_over_the_weights_trains_its_task_weights(tmp_path, copy_corpus):
  """GradNorm's own loss reaches its learnable weights through combine_terms (one apply), with
  norms taken over the shared weights."""
  c = _components(tmp_path, copy_corpus, combiner="gradnorm", clip_per_term=False)
  batch = _mixed_batch(c)
  variables = trainable_variables(c.model, c.heads, c.combiner)
  grads, losses, weights, _ = term_gradients.term_gradients(c.model, c.heads, (batch,), variables)
  combined, _, _ = combined_gradients.combine_terms(c.combiner, losses, weights, grads, variables)
  (position,) = [j for j, v in enumerate(variables) if v is c.combiner.task_weights]
  own = combined[position].numpy()
  # First step: target = mean(G), so d/dw_i sum_j |w_j n_j - target| = sign(G_i - mean) n_i,
  # with n_i = ||g_i|| over the shared weights and opposite signs for the two terms.
  shared = combined_gradients.shared_positions(grads, c.term_names)
  norms = [float(tf.linalg.global_norm([grads[n][j] for j in shared])) for n in c.term_names]
  assert np.abs(own).tolist() == pytest.approx(norms, rel=1e-4)
  assert own[0] * own[1] < 0


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_term_gradients_train_under_mixed_precision(tmp_path, copy_corpus, precision):
  """metabalance with per-term clipping: finite, falling loss in both mixed precisions; under
  float16 the per-term gradients are unscaled before combining and rescaled for the optimizer."""
  config = tiny_config(tmp_path / precision, copy_corpus, True, precision=precision,
                       combiner="metabalance", clip_per_term=True, learning_rate=3e-3,
                       warmup_steps=5)
  config = dataclasses.replace(config, heads=parse_heads_spec("price:dropout=0"))
  try:
    c = build_components(config)
    variables = trainable_variables(c.model, c.heads, c.combiner)
    if precision == "mixed_float16":
      batch = _mixed_batch(c)
      scaled, _, _, _, _ = combined_gradients.combined_gradients(
          c.model, c.heads, _combiner("pcgrad", c.term_names), c.optimizer, variables, (batch,))
      plain, _, _, _, _ = combined_gradients.combined_gradients(
          c.model, c.heads, _combiner("pcgrad", c.term_names), keras.optimizers.SGD(), variables,
          (batch,))
      scale = float(c.optimizer.dynamic_scale)
      diff = tf.linalg.global_norm([s / scale - p for s, p in zip(scaled, plain) if p is not None])
      assert float(diff) < 1e-2 * float(tf.linalg.global_norm([p for p in plain if p is not None]))
    step = make_train_step(c.model, c.heads, c.combiner, c.optimizer)
    iterator = iter(c.bundle.train_dataset(512, 0))
    losses = [float(step(next(iterator))["loss/translation"]) for _ in range(25)]
  finally:
    keras.mixed_precision.set_global_policy("float32")
  assert np.all(np.isfinite(losses)), losses
  assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.5, losses


def test_weight_zero_head_is_an_exact_no_op_with_metabalance(tmp_path, copy_corpus):
  """Weight 0 removes the head before the step exists, so the per-term path (metabalance,
  per-term clipping) trains bit-identically with and without it."""
  results = []
  for heads in ("price:dropout=0", "price:dropout=0;attention_entropy:weight=0;domain:weight=0"):
    config = tiny_config(tmp_path / str(len(results)), copy_corpus, True, precision="float32",
                         combiner="metabalance", clip_per_term=True)
    c = build_components(dataclasses.replace(config, heads=parse_heads_spec(heads)))
    assert c.term_names == ("translation", "price")
    step = make_train_step(c.model, c.heads, c.combiner, c.optimizer)
    for batch in c.bundle.train_dataset(512, 0).take(3):
      step(batch)
    results.append([v.numpy() for v in c.model.trainable_variables] + [c.combiner.norms.numpy()])
  for a, b in zip(*results):
    np.testing.assert_array_equal(a, b)


def test_boundary_space_still_trains_and_differs_from_weights(tmp_path, copy_corpus):
  """--gradient_space=boundary keeps the older per-term gradients at the encoder outputs."""
  moved = {}
  for space in ("boundary", "weights"):
    c = _components(tmp_path / space, copy_corpus, combiner="pcgrad", gradient_space=space)
    assert term_gradients.uses_term_gradients(c.combiner) == (space == "weights")
    batch = _mixed_batch(c)
    before = [v.numpy().copy() for v in c.model.trainable_variables]
    result = make_train_step(c.model, c.heads, c.combiner, c.optimizer)(batch)
    assert bool(result["finite"]) and int(c.optimizer.iterations.numpy()) == 1
    moved[space] = [v.numpy() - b for v, b in zip(c.model.trainable_variables, before)]
  assert any(not np.allclose(a, b) for a, b in zip(moved["boundary"], moved["weights"]))


def test_shrink_takes_two_gradients_and_equals_fixed_when_the_cap_does_not_bind(
    tmp_path, copy_corpus):
  """metabalance shrink balances the auxiliaries together: translation's gradient and the
  gradient of the weighted sum of price, domain and attention_entropy (price from its own rows),
  i.e. two backwards over the sentence pairs instead of three. With a cap that cannot bind
  (target 1e9) the combined gradient is the fixed combiner's summed gradient, and the
  auxiliaries' gradient is exactly the weighted sum of the per-term ones."""
  c = _components(tmp_path, copy_corpus, "price:dropout=0;domain:weight=0.5;attention_entropy",
                  combiner="metabalance", balance_strategy="shrink", balance_relax=1.0,
                  balance_target=1e9, clip_per_term=False)
  assert term_gradients.merges_auxiliaries(c.combiner) == "translation"
  batch = _mixed_batch(c)
  variables = trainable_variables(c.model, c.heads, c.combiner)
  grads, losses, weights, _ = term_gradients.term_gradients(c.model, c.heads, (batch,), variables,
                                                            merge="translation")
  assert set(grads) == {"translation", term_gradients.AUXILIARIES}
  assert set(losses) == set(weights) == set(c.term_names) and weights["domain"] == 0.5
  per_term, per_losses, _, _ = term_gradients.term_gradients(c.model, c.heads, (batch,),
                                                             variables)
  for j, v in enumerate(variables):
    parts = [weights[n] * per_term[n][j] for n in c.term_names
             if n != "translation" and per_term[n][j] is not None]
    assert (grads[term_gradients.AUXILIARIES][j] is None) == (not parts), v.path
    if parts:
      np.testing.assert_allclose(grads[term_gradients.AUXILIARIES][j].numpy(),
                                 tf.add_n(parts).numpy(), rtol=1e-4, atol=1e-6, err_msg=v.path)
  combined, total, used = combined_gradients.combine_terms(c.combiner, losses, weights, grads,
                                                           variables)
  assert {n: float(u) for n, u in used.items()} == pytest.approx(weights)
  with tf.GradientTape() as tape:
    outputs = c.model(batch, training=True)
    ref_losses, ref_weights, _ = head_losses(outputs, c.heads, batch, training=True)
    ref_total = tf.add_n([ref_weights[n] * ref_losses[n] for n in c.term_names])
  reference = tape.gradient(ref_total, variables)
  assert float(total) == pytest.approx(float(ref_total), rel=1e-5)
  for name in c.term_names:
    assert float(losses[name]) == pytest.approx(float(ref_losses[name]), rel=1e-5)
  for g, r, v in zip(combined, reference, variables):
    assert (g is None) == (r is None), v.path
    if g is not None:
      np.testing.assert_allclose(g.numpy(), tf.convert_to_tensor(r).numpy(), rtol=1e-4,
                                 atol=1e-6, err_msg=v.path)
  assert float(tf.reduce_max(c.combiner.norms)) > 0  # the moving norms were updated


def _merged_toy(term_clip_norm=0.0):
  """Variables: a shared tensor [2], head a's own [1], head b's own [1]. translation (weight 1)
  g = (3, 4) on the shared tensor only; the auxiliaries' weighted sum is (0, 7) there, and on the
  heads' own weights w_a g_a = 2, w_b g_b = -1. metabalance shrink, r = 1, rho = 1.
  Returns combine_terms' (combined, total)."""
  from training.combine_balance import MetaBalance  # pylint: disable=import-outside-toplevel
  variables = [tf.Variable(tf.zeros([2])), tf.Variable(tf.zeros([1])), tf.Variable(tf.zeros([1]))]
  combiner = MetaBalance(("translation", "a", "b"), variables=variables, relax=1.0,
                         strategy="shrink", target=1.0, term_clip_norm=term_clip_norm)
  assert combiner.balances_auxiliaries_together
  grads = {"translation": [tf.constant([3.0, 4.0]), None, None],
           term_gradients.AUXILIARIES: [tf.constant([0.0, 7.0]), tf.constant([2.0]),
                                        tf.constant([-1.0])]}
  losses = {"translation": tf.constant(1.0), "a": tf.constant(2.0), "b": tf.constant(3.0)}
  weights = {"translation": 1.0, "a": 0.5, "b": 2.0}
  combined, total, _ = combined_gradients.combine_terms(combiner, losses, weights, grads, variables)
  return combined, total


def test_merged_auxiliaries_assemble_each_head_its_own_gradient_by_hand():
  """_merged_toy: the sum is capped at norm 5 on the shared tensor (G = (3, 9)); each head's own
  weights get exactly their weighted gradient."""
  combined, total = _merged_toy()
  assert [g.numpy().tolist() for g in combined] == [pytest.approx([3.0, 9.0]), [2.0], [-1.0]]
  assert float(total) == pytest.approx(1.0 + 1.0 + 6.0)


def test_merged_auxiliaries_with_per_term_clipping_by_hand():
  """_merged_toy with --clip_per_term (clip 5): translation's (3, 4) has norm 5 and stays; the
  auxiliaries' sum over every weight it reaches, (0, 7, 2, -1), has norm sqrt(54) = 7.348 and is
  scaled by 5 / 7.348 to (0, 4.763, 1.361, -0.680). Its moving norm on the shared tensor (0.4763)
  is below translation's (0.5), so the cap leaves it: G = (3, 4 + 4.763); the heads' own weights
  get the clipped sum (the step's global clip is off under per-term clipping)."""
  combined, _ = _merged_toy(term_clip_norm=5.0)
  scale = 5.0 / np.sqrt(54.0)
  assert [g.numpy().tolist() for g in combined] == [
      pytest.approx([3.0, 4.0 + 7.0 * scale], rel=1e-5), pytest.approx([2.0 * scale], rel=1e-5),
      pytest.approx([-scale], rel=1e-5)]
