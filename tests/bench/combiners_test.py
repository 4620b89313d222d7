"""bench/combiners.py runs end to end on a tiny model and reports a ratio per combiner."""
from bench import combiners


def test_quick_combiner_bench_reports_ratios(tmp_path):
  result = combiners.run(["--quick", "--steps=2", "--warmup_steps=1", "--rounds=1",
                          "--combiners=uncertainty,pcgrad", "--translation_only",
                          f"--workdir={tmp_path}",
                          f"--data_dir={tmp_path / 'absent'}"])
  assert result["fixed_ratio"] == 1.0
  for name in ("uncertainty", "pcgrad", "translation_only"):
    # a step that traced the step function again (a new batch shape) is left out of the timing
    assert 1 <= result[f"{name}_steps"] <= 2
    assert result[f"{name}_ratio"] > 0


def test_combiner_specs_carry_typed_train_options():
  assert combiners.parse_combiner("fixed") == ("fixed", {})
  assert combiners.parse_combiner(
      "metabalance:balance_strategy=shrink+balance_target=0.3+clip_per_term=true") == (
          "metabalance", {"balance_strategy": "shrink", "balance_target": 0.3,
                          "clip_per_term": True})
