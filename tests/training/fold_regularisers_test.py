"""--fold_regularisers (issue 18): translation's regularisers join its backward at their fixed
weights under metabalance's shrink cap, and the result is exactly the gradients it claims."""
import numpy as np
import pytest
import tensorflow as tf

from tests_support import mixed_batch as _mixed_batch, term_components as _components
from training import combined_gradients, term_gradients
from training.step import head_losses, make_train_step, trainable_variables


def _fixed_reference(c, batch, variables):
  """The `fixed` combiner's gradient: of sum_i w_i loss_i, one pass over the whole batch."""
  with tf.GradientTape() as tape:
    outputs = c.model(batch, training=True)
    losses, weights, _ = head_losses(outputs, c.heads, batch, training=True)
    total = tf.add_n([weights[n] * losses[n] for n in c.term_names])
  return tape.gradient(total, variables), losses, weights


def test_regularisers_fold_into_translations_backward(tmp_path, copy_corpus):
  """--fold_regularisers: attention_entropy (reads the cross-attention) joins
  translation's backward at its weight over translation's; price and domain (encoder summary)
  stay in the auxiliaries' sum. With a cap that cannot bind the step's gradient is still the
  fixed combiner's; the keys are the same two, the main one now carrying the regulariser."""
  c = _components(tmp_path, copy_corpus, "price:dropout=0;domain:weight=0.5;"
                  "attention_entropy:weight=0.2", combiner="metabalance",
                  balance_strategy="shrink", balance_relax=1.0, balance_target=1e9,
                  clip_per_term=False, fold_regularisers=True)
  assert [term_gradients.regularises_translation(h) for h in c.heads] == [
      False, False, False, True]
  assert term_gradients.folds_regularisers(c.combiner)
  batch = _mixed_batch(c)
  variables = trainable_variables(c.model, c.heads, c.combiner)
  grads, losses, weights, _ = term_gradients.term_gradients(
      c.model, c.heads, (batch,), variables, merge="translation", fold=True)
  assert set(grads) == {"translation", term_gradients.AUXILIARIES}
  per_term, _, _, _ = term_gradients.term_gradients(c.model, c.heads, (batch,), variables)
  expected = {"translation": {"translation": 1.0, "attention_entropy": 0.2},
              term_gradients.AUXILIARIES: {"price": 1.0, "domain": 0.5}}
  for key, mix in expected.items():
    for j, v in enumerate(variables):
      parts = [w * per_term[n][j] for n, w in mix.items() if per_term[n][j] is not None]
      assert (grads[key][j] is None) == (not parts), (key, v.path)
      if parts:
        np.testing.assert_allclose(grads[key][j].numpy(), tf.add_n(parts).numpy(), rtol=1e-4,
                                   atol=1e-6, err_msg=f"{key} {v.path}")
  combined, total, _ = combined_gradients.combine_terms(c.combiner, losses, weights, grads,
                                                        variables)
  reference, ref_losses, ref_weights = _fixed_reference(c, batch, variables)
  assert float(total) == pytest.approx(float(tf.add_n(
      [ref_weights[n] * ref_losses[n] for n in c.term_names])), rel=1e-5)
  for g, r, v in zip(combined, reference, variables):
    assert (g is None) == (r is None), v.path
    if g is not None:
      np.testing.assert_allclose(g.numpy(), tf.convert_to_tensor(r).numpy(), rtol=1e-4,
                                 atol=1e-6, err_msg=v.path)


def test_translation_with_regularisers_only_is_one_backward_and_the_fixed_gradient(
    tmp_path, copy_corpus):
  """Translation + attention_entropy under metabalance's shrink cap: folded, the step takes one
  gradient (nothing left to balance) and it is the fixed combiner's; with
  --nofold_regularisers the regulariser is capped as an auxiliary (two gradients)."""
  for fold in (True, False):
    c = _components(tmp_path / str(fold), copy_corpus, "attention_entropy:weight=0.5",
                    combiner="metabalance", balance_strategy="shrink", balance_relax=1.0,
                    balance_target=0.3, clip_per_term=False, fold_regularisers=fold)
    assert term_gradients.folds_regularisers(c.combiner) == fold
    batch = next(iter(c.bundle.train_dataset(512, 0)))
    variables = trainable_variables(c.model, c.heads, c.combiner)
    grads, losses, weights, _ = term_gradients.term_gradients(
        c.model, c.heads, (batch,), variables, merge="translation", fold=fold)
    assert set(grads) == ({"translation"} if fold else
                          {"translation", term_gradients.AUXILIARIES})
    if not fold:
      continue
    combined, _, used = combined_gradients.combine_terms(c.combiner, losses, weights, grads,
                                                         variables)
    assert {n: float(u) for n, u in used.items()} == {"translation": 1.0,
                                                      "attention_entropy": 0.5}
    reference, _, _ = _fixed_reference(c, batch, variables)
    for g, r, v in zip(combined, reference, variables):
      assert (g is None) == (r is None), v.path
      if g is not None:
        np.testing.assert_allclose(g.numpy(), tf.convert_to_tensor(r).numpy(), rtol=1e-4,
                                   atol=1e-6, err_msg=v.path)
    before = int(c.optimizer.iterations.numpy())
    result = make_train_step(c.model, c.heads, c.combiner, c.optimizer)(batch)
    assert bool(result["finite"]) and int(c.optimizer.iterations.numpy()) == before + 1


def test_refreshed_fold_scale_is_the_least_squares_scalar_of_the_cap_by_hand():
  """Two tensors: translation's gradient norms 1 and 1, the regularisers' 3 and 0.1; cap 0.3x,
  relax 1, shrink. Tensor 1 is capped (factor 0.3 / 3 = 0.1), tensor 2 is under the cap
  (factor 1). s = (0.1 * 3^2 + 1 * 0.1^2) / (3^2 + 0.1^2) = 0.91 / 9.01."""
  from training.combine_balance import MetaBalance  # pylint: disable=import-outside-toplevel
  variables = [tf.Variable(tf.zeros([2])), tf.Variable(tf.zeros([1]))]
  combiner = MetaBalance(["translation", "attention_entropy"], variables=variables, relax=1.0,
                         strategy="shrink", target=0.3, fold_regularisers=True,
                         fold_refresh_every=5)
  assert float(combiner.fold_scale) == 1.0
  main = [tf.constant([0.6, 0.8]), tf.constant([-1.0])]
  regularisers = [tf.constant([0.0, 3.0]), tf.constant([0.1])]
  scale = combiner.refresh_fold_scale(main, regularisers)
  assert float(scale) == pytest.approx(0.91 / 9.01, rel=1e-6)
  assert float(combiner.fold_scale) == pytest.approx(0.91 / 9.01, rel=1e-6)
  # no regulariser gradient at all: scale 1 (nothing to cap), not 0/0
  assert float(combiner.refresh_fold_scale(main, [tf.zeros([2]), tf.zeros([1])])) == 1.0


def test_capped_fold_refreshes_every_n_steps_and_folds_at_that_scale_between(
    tmp_path, copy_corpus):
  """--fold_refresh_every=2, translation + attention_entropy + price under metabalance's shrink
  cap: a refresh step takes translation's and the regulariser's gradients apart, sets the scale
  to `refresh_fold_scale` of them and adds the regulariser at it; the next step folds it into
  translation's one backward at that scale: the same gradient as the two backwards combined
  (float tolerance). One apply per step, one trace per kind of step."""
  c = _components(tmp_path, copy_corpus, "price:dropout=0;attention_entropy:weight=0.5",
                  combiner="metabalance", balance_strategy="shrink", balance_relax=1.0,
                  balance_target=0.3, clip_per_term=False, fold_regularisers=True,
                  fold_refresh_every=2)
  assert term_gradients.fold_refresh_every(c.combiner) == 2
  batch = _mixed_batch(c)
  variables = trainable_variables(c.model, c.heads, c.combiner)
  # the refresh: translation's gradient and the regulariser's (in translation's units) apart
  grads, losses, weights, _ = term_gradients.term_gradients(
      c.model, c.heads, (batch,), variables, merge="translation", fold=True,
      fold_scale=c.combiner.fold_scale, refresh=True)
  assert set(grads) == {"translation", term_gradients.REGULARISERS, term_gradients.AUXILIARIES}
  per_term, _, _, _ = term_gradients.term_gradients(c.model, c.heads, (batch,), variables)
  for j, v in enumerate(variables):
    if per_term["attention_entropy"][j] is not None:
      np.testing.assert_allclose(grads[term_gradients.REGULARISERS][j].numpy(),
                                 0.5 * per_term["attention_entropy"][j].numpy(), rtol=1e-4,
                                 atol=1e-7, err_msg=v.path)
  both = [j for j, (g, r) in enumerate(zip(grads["translation"],
                                           grads[term_gradients.REGULARISERS]))
          if g is not None and r is not None]
  main_norms = np.array([np.linalg.norm(grads["translation"][j].numpy()) for j in both])
  reg_norms = np.array([np.linalg.norm(grads[term_gradients.REGULARISERS][j].numpy())
                        for j in both])
  factor = np.where(reg_norms > 0.3 * main_norms, 0.3 * main_norms / reg_norms, 1.0)
  expected_scale = float(np.sum(factor * reg_norms ** 2) / np.sum(reg_norms ** 2))
  assert 0.0 < expected_scale < 1.0  # the cap binds somewhere, so the test can tell
  combined_gradients.combine_terms(c.combiner, losses, weights, grads, variables)
  assert float(c.combiner.fold_scale) == pytest.approx(expected_scale, rel=1e-4)
  # between refreshes: one backward, translation + scale * regulariser
  folded, _, _, _ = term_gradients.term_gradients(
      c.model, c.heads, (batch,), variables, merge="translation", fold=True,
      fold_scale=c.combiner.fold_scale)
  assert set(folded) == {"translation", term_gradients.AUXILIARIES}
  for j, v in enumerate(variables):
    parts = [w * per_term[n][j] for n, w in (("translation", 1.0),
                                             ("attention_entropy", 0.5 * expected_scale))
             if per_term[n][j] is not None]
    assert (folded["translation"][j] is None) == (not parts), v.path
    if parts:
      np.testing.assert_allclose(folded["translation"][j].numpy(), tf.add_n(parts).numpy(),
                                 rtol=1e-4, atol=1e-7, err_msg=v.path)
  # the step: refreshes at optimizer steps 0, 2, 4; one apply each; two traces in all
  step = make_train_step(c.model, c.heads, c.combiner, c.optimizer)
  scales = []
  for i in range(4):
    c.combiner.fold_scale.assign(-1.0)  # a refresh overwrites it, a folded step leaves it
    result = step(batch)
    assert bool(result["finite"]) and int(c.optimizer.iterations.numpy()) == i + 1
    scales.append(float(c.combiner.fold_scale))
    assert float(result["fold_scale"]) == scales[-1]  # logged with the losses
  assert [s != -1.0 for s in scales] == [True, False, True, False]
  assert step.experimental_get_tracing_count() == 2
