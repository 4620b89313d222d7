"""The host's matmul rate, recorded beside the scores of time-budgeted runs.

A run stopped by --max_minutes gets as far as the machine lets it: the same command on a host
with three times the bfloat16 matmul rate trains more steps and scores higher. The final record
therefore carries the rate measured on the host that trained (bench/flops.py measures the same
thing for the benchmarks).
"""
import time
from typing import Dict

import tensorflow as tf
from absl import logging


def matmul_rate(m: int, k: int, n: int, dtype, seconds: float) -> float:
  """GFLOP/s of [m, k] @ [k, n] in `dtype`, repeated inside one tf.function for ~`seconds`."""
  # Stateless draws: under --deterministic (op determinism on) a stateful random op without a
  # graph seed raises, and this runs at the end of a --max_minutes run.
  a = tf.cast(tf.random.stateless_uniform([m, k], seed=[1, 2], dtype=tf.float32), dtype)
  b = tf.cast(tf.random.stateless_uniform([k, n], seed=[3, 4], dtype=tf.float32), dtype)

  @tf.function
  def repeat(a, b, times):
    acc = tf.zeros([m, n], dtype)
    for _ in tf.range(times):
      acc += tf.matmul(a, b)
    return acc

  repeat(a, b, tf.constant(2)).numpy()  # trace + warm
  times = 2
  while True:
    start = time.perf_counter()
    repeat(a, b, tf.constant(times)).numpy()
    elapsed = time.perf_counter() - start
    if elapsed >= seconds or times >= 1 << 16:
      return 2.0 * m * k * n * times / elapsed / 1e9
    times = max(times * 2, int(times * seconds / max(elapsed, 1e-6)))


def host_matmul_gflops(square: int = 1024, seconds: float = 0.5) -> Dict[str, float]:
  """{"host_matmul_gflops_fp32": ..., "host_matmul_gflops_bf16": ...}: square x square matmuls,
  ~`seconds` each (about two seconds in all with tracing)."""
  rates = {name: round(matmul_rate(square, square, square, dtype, seconds), 1)
           for name, dtype in (("fp32", tf.float32), ("bf16", tf.bfloat16))}
  logging.info("host matmul rate (%d^2): %.0f GFLOP/s float32, %.0f GFLOP/s bfloat16",
               square, rates["fp32"], rates["bf16"])
  return {f"host_matmul_gflops_{name}": rate for name, rate in rates.items()}
