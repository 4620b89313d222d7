"""bench/same_row_backward.py: the loop of backwards, the vectorised Jacobian and the one backward
of the sum give the same gradients on a tiny model, and each variant is timed."""
from bench import same_row_backward


def test_quick_run_times_every_variant_and_the_gradients_agree(tmp_path):
  result = same_row_backward.run(["--quick", "--steps=2", "--warmup_steps=1", "--rounds=1",
                                  f"--workdir={tmp_path}"])
  assert result["sum_ratio"] == 1.0
  for name in same_row_backward.VARIANTS:
    assert result[f"{name}_steps"] == 2 and result[f"{name}_step_ms"] > 0
  # float32: the same gradients up to summation order; a wrong term (e.g. the main term's
  # gradient twice) would differ by O(1).
  assert result["max_rel_diff"] < 1e-4
  assert result["sum_rel_diff"] < 1e-4
  assert result["global_rel_diff"] <= result["max_rel_diff"]
