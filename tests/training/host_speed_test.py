"""The host's matmul rate is recorded beside the final score of time-budgeted runs only."""
import json

import pytest
import tensorflow as tf

from tests_support import tiny_config
from training import host_speed, loop


def test_matmul_rate_counts_two_flops_per_multiply_add():
  rate = host_speed.matmul_rate(32, 16, 8, tf.float32, seconds=0.01)
  assert 0 < rate < 1e5  # GFLOP/s: a CPU core does not reach 100 TFLOP/s
  rates = host_speed.host_matmul_gflops(square=64, seconds=0.01)
  assert set(rates) == {"host_matmul_gflops_fp32", "host_matmul_gflops_bf16"}
  assert all(value > 0 for value in rates.values())


@pytest.mark.parametrize("max_minutes", [0.0, 30.0])
def test_final_record_has_the_host_rate_when_the_run_is_time_budgeted(
    tmp_path, copy_corpus, max_minutes):
  workdir = tmp_path / "run"
  final = loop.train(tiny_config(workdir, copy_corpus, False, train_steps=2,
                                 max_minutes=max_minutes))
  record = json.loads((workdir / "metrics.jsonl").read_text().splitlines()[-1])
  assert record["kind"] == "final"
  budgeted = max_minutes > 0
  assert ("host_matmul_gflops_bf16" in record) == budgeted
  assert ("host_matmul_gflops_fp32" in final) == budgeted
  if budgeted:
    assert record["host_matmul_gflops_bf16"] > 0 and record["host_matmul_gflops_fp32"] > 0
