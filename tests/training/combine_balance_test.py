"""metabalance and task_moments on toy gradients whose results are computed by hand."""
import types

import numpy as np
import pytest
import tensorflow as tf

from configs.errors import UserError
from training import combine, combine_balance
from training.components import variables_checkpoint

NAMES = ("translation", "price")
LOSSES = {"translation": tf.constant(1.0), "price": tf.constant(1.0)}


def _variables(*shapes):
  return [tf.Variable(tf.zeros(s)) for s in shapes]


def test_metabalance_two_parameters_by_hand():
  """One shared tensor of two parameters at position 1 (of 2), r = 0.7, beta = 0.9, price weight 2.
  Step 1: g_t = (3, 4), 2 g_p = (0, 20). m_t = 0.1 * 5 = 0.5, m_p = 0.1 * 20 = 2; factor
  0.7 * 0.5 / 2 + 0.3 = 0.475; G = (3, 4 + 9.5) = (3, 13.5).
  Step 2: 2 g_p = (0, 10). m_t = 0.9 * 0.5 + 0.1 * 5 = 0.95, m_p = 0.9 * 2 + 0.1 * 10 = 2.8;
  factor 0.7 * 0.95 / 2.8 + 0.3 = 0.5375; G = (3, 4 + 5.375)."""
  comb = combine_balance.MetaBalance(NAMES, variables=_variables([3], [2]), relax=0.7)
  weights = {"translation": 1.0, "price": 2.0}
  grads = {"translation": [tf.constant([3.0, 4.0])], "price": [tf.constant([0.0, 10.0])]}
  used, shared, _ = comb.combine_tensors(LOSSES, weights, grads, [1])
  assert shared[0].numpy().tolist() == pytest.approx([3.0, 13.5])
  assert float(used["price"]) == 2.0  # task-specific weights keep the plain weighted gradient
  np.testing.assert_allclose(comb.norms.numpy(), [[0.0, 0.5], [0.0, 2.0]], rtol=1e-6)
  grads["price"] = [tf.constant([0.0, 5.0])]
  _, shared, _ = comb.combine_tensors(LOSSES, weights, grads, [1])
  assert shared[0].numpy().tolist() == pytest.approx([3.0, 4.0 + 10 * 0.5375])


def test_metabalance_relax_zero_is_the_weighted_sum_and_main_absent_keeps_aux():
  comb = combine_balance.MetaBalance(NAMES, variables=_variables([2], [2]), relax=0.0)
  grads = {"translation": [tf.constant([3.0, 4.0]), tf.zeros([2])],
           "price": [tf.constant([0.0, 10.0]), tf.constant([1.0, 1.0])]}
  _, shared, _ = comb.combine_tensors(LOSSES, {"translation": 1.0, "price": 1.0}, grads, [0, 1])
  assert shared[0].numpy().tolist() == pytest.approx([3.0, 14.0])
  comb = combine_balance.MetaBalance(NAMES, variables=_variables([2], [2]), relax=1.0)
  _, shared, _ = comb.combine_tensors(LOSSES, {"translation": 1.0, "price": 1.0}, grads, [0, 1])
  assert shared[0].numpy().tolist() == pytest.approx([3.0, 4.0 + 5.0])  # price at norm 5
  assert shared[1].numpy().tolist() == pytest.approx([1.0, 1.0])  # translation never here


def test_task_moments_by_hand():
  """r = 1, beta2 = 0.98. g_t = (3, 0), g_p = (1, 2): v_t = 0.02 (9, 0), v_p = 0.02 (1, 4);
  element 0: price scaled by sqrt(0.18 / 0.02) = 3 -> 3; element 1: translation has no second
  moment there, price unscaled -> 2. G = (3 + 3, 0 + 2). Same gradients again: v_t = (0.3564, 0),
  v_p = (0.0396, 0.1584) (ratio still 3)."""
  comb = combine_balance.TaskMoments(NAMES, variables=_variables([2]), relax=1.0)
  grads = {"translation": [tf.constant([3.0, 0.0])], "price": [tf.constant([1.0, 2.0])]}
  one = {"translation": 1.0, "price": 1.0}
  _, shared, _ = comb.combine_tensors(LOSSES, one, grads, [0])
  assert shared[0].numpy().tolist() == pytest.approx([6.0, 2.0], rel=1e-5)
  _, shared, _ = comb.combine_tensors(LOSSES, one, grads, [0])
  assert shared[0].numpy().tolist() == pytest.approx([6.0, 2.0], rel=1e-5)
  assert comb.moments[0][0].numpy().tolist() == pytest.approx([0.3564, 0.0], rel=1e-5)
  assert comb.moments[1][0].numpy().tolist() == pytest.approx([0.0396, 0.1584], rel=1e-5)


def test_balancing_state_round_trips_through_the_checkpoint(tmp_path):
  a = combine_balance.MetaBalance(NAMES, variables=_variables([2]))
  a.norms.assign([[1.5], [2.5]])
  path = variables_checkpoint(a).save(str(tmp_path / "ckpt"))
  b = combine_balance.MetaBalance(NAMES, variables=_variables([2]))
  variables_checkpoint(b).restore(path).assert_existing_objects_matched()
  assert b.norms.numpy().tolist() == [[1.5], [2.5]]


def _train(**kwargs):
  fields = dict(combiner="metabalance", main_task="translation", clip_norm=1.0,
                clip_per_term=False, gradient_space="weights", balance_relax=0.7,
                balance_strategy="both", balance_target=1.0, schedule="joint",
                fold_regularisers=True, fold_refresh_every=10)
  fields.update(kwargs)
  return types.SimpleNamespace(**fields)


def test_make_combiner_options_and_refusals():
  comb = combine.make_combiner(_train(balance_relax=0.3, main_task="price"), NAMES,
                               _variables([2]))
  assert (comb.relax, comb.main_task, comb.slots) == (0.3, "price", 1)
  assert combine.make_combiner(_train(combiner="pcgrad", clip_per_term=True),
                               NAMES).term_clip_norm == 1.0
  with pytest.raises(UserError, match="--main_task=domain: .*terms: translation, price"):
    combine.make_combiner(_train(main_task="domain"), NAMES)
  with pytest.raises(UserError, match="--gradient_space=boundary has no per-weight"):
    combine.make_combiner(_train(gradient_space="boundary"), NAMES)
  with pytest.raises(UserError, match="unknown combiner 'metabalanse'.*metabalance"):
    combine.make_combiner(_train(combiner="metabalanse"), NAMES)
  with pytest.raises(ValueError, match="relax factor must be in"):
    combine_balance.MetaBalance(NAMES, relax=1.5)
  assert np.isclose(combine.make_combiner(_train(combiner="fixed", main_task="nope"),
                                          NAMES).term_clip_norm, 0.0)  # fixed has no main task


def test_gcs_keeps_only_auxiliary_gradients_with_positive_cosine():
  """main (1, 0); a = (1, 1) (cos > 0) is added, b = (-1, 1) (cos < 0) is dropped."""
  comb = combine_balance.GradientCosineSimilarity(["translation", "a", "b"])
  grads = {"translation": tf.constant([1.0, 0.0]), "a": tf.constant([1.0, 1.0]),
           "b": tf.constant([-1.0, 1.0])}
  losses = {n: tf.constant(1.0) for n in grads}
  _, shared, _ = comb.combine_gradients(losses, {n: 1.0 for n in grads}, grads)
  assert shared.numpy().tolist() == pytest.approx([2.0, 1.0])


def test_bloop_projects_against_the_moving_average_by_hand():
  """beta = 0.9. Step 1: g_t = (2, 0) -> e = (0.2, 0); g_p = (1, 1) loses its e-component
  (1, 0): G = (2, 0) + (0, 1). Step 2: g_t = (0, 2) -> e = (0.18, 0.2); g_p = (1, 1):
  g_p . e = 0.38, ||e||^2 = 0.0724, coefficient 0.38 / 0.0724; G = g_t + g_p - coeff e."""
  comb = combine_balance.Bloop(NAMES, variables=_variables([2]))
  one = {"translation": 1.0, "price": 1.0}
  grads = {"translation": [tf.constant([2.0, 0.0])], "price": [tf.constant([1.0, 1.0])]}
  _, shared, _ = comb.combine_tensors(LOSSES, one, grads, [0])
  assert shared[0].numpy().tolist() == pytest.approx([2.0, 1.0])
  grads["translation"] = [tf.constant([0.0, 2.0])]
  _, shared, _ = comb.combine_tensors(LOSSES, one, grads, [0])
  coeff = 0.38 / 0.0724
  assert shared[0].numpy().tolist() == pytest.approx([1 - coeff * 0.18, 3 - coeff * 0.2],
                                                     rel=1e-5)
  assert comb.main_average[0].numpy().tolist() == pytest.approx([0.18, 0.2])


def test_negligible_auxiliary_gradients_are_not_blown_up():
  """Regression: attention entropy's gradient on the encoder's last LayerNorm bias is round-off
  (~1e-9 of translation's; softmax is shift-invariant). Scaled to the main magnitude it became a
  full-size random update (and made 2 replicas differ from 1 device by 0.06). Left unscaled."""
  grads = {"translation": [tf.constant([3.0, 4.0])], "price": [tf.constant([3e-9, -4e-9])]}
  one = {"translation": 1.0, "price": 1.0}
  for comb in (combine_balance.MetaBalance(NAMES, variables=_variables([2]), relax=1.0),
               combine_balance.TaskMoments(NAMES, variables=_variables([2]), relax=1.0)):
    _, shared, _ = comb.combine_tensors(LOSSES, one, grads, [0])
    assert shared[0].numpy().tolist() == pytest.approx([3.0, 4.0], abs=1e-7), comb.name


def test_metabalance_strategies_and_target_by_hand():
  """r = 1, one step (beta = 0.9): m_t = 0.1 * 5 = 0.5 on tensor 0 and 0.1 * 1 = 0.1 on tensor
  1; price's m_p = 0.1 * 10 = 1 and 0.1 * 0.05 = 0.005.
  shrink, rho = 1: tensor 0 price above 0.5 -> scaled to norm 5 (its step norm 10 * 0.5 / 1);
  tensor 1 below 0.1 -> untouched.
  enlarge: tensor 0 untouched; tensor 1 scaled by 0.1 / 0.005 = 20 -> (0, 1).
  shrink, rho = 0.2: tensor 0 target 0.1 -> factor 0.1 / 1 = 0.1 -> price at norm 1."""
  grads = {"translation": [tf.constant([3.0, 4.0]), tf.constant([1.0, 0.0])],
           "price": [tf.constant([0.0, 10.0]), tf.constant([0.0, 0.05])]}
  one = {"translation": 1.0, "price": 1.0}

  def run(strategy, target):
    comb = combine_balance.MetaBalance(NAMES, variables=_variables([2], [2]), relax=1.0,
                                       strategy=strategy, target=target)
    _, shared, _ = comb.combine_tensors(LOSSES, one, grads, [0, 1])
    return [s.numpy().tolist() for s in shared]

  shrink = run("shrink", 1.0)
  assert shrink[0] == pytest.approx([3.0, 4.0 + 5.0])
  assert shrink[1] == pytest.approx([1.0, 0.05])
  enlarge = run("enlarge", 1.0)
  assert enlarge[0] == pytest.approx([3.0, 14.0])
  assert enlarge[1] == pytest.approx([1.0, 1.0])
  both = run("both", 1.0)
  assert both[0] == pytest.approx(shrink[0]) and both[1] == pytest.approx(enlarge[1])
  assert run("shrink", 0.2)[0] == pytest.approx([3.0, 4.0 + 1.0])


def test_task_moments_shrink_caps_each_element_at_the_main_rms():
  """r = 1, shrink: g_t = (3, 1), g_p = (1, 2) -> element 0 (price RMS below) untouched, element
  1 (price RMS 2x translation's) halved -> G = (3 + 1, 1 + 1)."""
  comb = combine_balance.TaskMoments(NAMES, variables=_variables([2]), relax=1.0,
                                     strategy="shrink")
  grads = {"translation": [tf.constant([3.0, 1.0])], "price": [tf.constant([1.0, 2.0])]}
  _, shared, _ = comb.combine_tensors(LOSSES, {"translation": 1.0, "price": 1.0}, grads, [0])
  assert shared[0].numpy().tolist() == pytest.approx([4.0, 2.0], rel=1e-5)


def test_make_combiner_passes_strategy_and_target():
  comb = combine.make_combiner(_train(balance_strategy="shrink", balance_target=0.3), NAMES,
                               _variables([2]))
  assert (comb.strategy, comb.target) == ("shrink", 0.3)


def test_metabalance_shrink_caps_the_sum_of_the_auxiliaries_by_hand():
  """shrink balances the auxiliaries together: r = 1, rho = 1, beta = 0.9, one step.
  g_t = (3, 4): m_t = 0.1 * 5 = 0.5. Auxiliaries a, b (weights 1 and 2), weighted sum S.
  Case 1: w_a g_a = (0, 3), w_b g_b = 2 (0, 2) = (0, 4): each below 5 (a per-term cap leaves both,
  G = (3, 11)); S = (0, 7), m_S = 0.7 > 0.5 -> S scaled by 0.5 / 0.7 to norm 5: G = (3, 9).
  Case 2: (0, 6) and (0, -4): a per-term cap would shrink a to (0, 5), G = (3, 5); S = (0, 2) is
  below the cap and stays: G = (3, 6) (the heads' cancellation is not penalised)."""
  names = ("translation", "a", "b")
  assert combine_balance.MetaBalance(names, strategy="shrink").balances_auxiliaries_together
  assert not combine_balance.MetaBalance(names, strategy="both").balances_auxiliaries_together
  assert combine_balance.MetaBalance(names, strategy="shrink", term_clip_norm=1.0
                                     ).balances_auxiliaries_together  # clips main and the sum
  combs = []
  for aux, expected, m_aux in (([0.0, 7.0], [3.0, 9.0], 0.7), ([0.0, 2.0], [3.0, 6.0], 0.2)):
    comb = combine_balance.MetaBalance(names, variables=_variables([3], [2]), relax=1.0,
                                       strategy="shrink", target=1.0)
    combs.append(comb)
    (shared,) = comb.combine_auxiliaries(1.0, [tf.constant([3.0, 4.0])], [tf.constant(aux)], [1])
    assert shared.numpy().tolist() == pytest.approx(expected, rel=1e-6)
    # every auxiliary row holds the sum's moving norm; tensor 0 was not shared, untouched
    np.testing.assert_allclose(comb.norms.numpy(), [[0.0, 0.5], [0.0, m_aux], [0.0, m_aux]],
                               rtol=1e-6)
  # Second step of case 1 with the same gradients: m_t = 0.95, m_S = 1.33, same ratio 5 / 7.
  (shared,) = combs[0].combine_auxiliaries(1.0, [tf.constant([3.0, 4.0])],
                                           [tf.constant([0.0, 7.0])], [1])
  assert shared.numpy().tolist() == pytest.approx([3.0, 4.0 + 7.0 * 0.95 / 1.33], rel=1e-6)
