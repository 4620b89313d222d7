"""Analytic training FLOPs of the Transformer and a matmul ceiling measured in the same run.

FLOPs count multiply-adds as 2 and only *useful* work (real tokens, not padding). For one pair
with s source and t target tokens, d = d_model, f = ffn_dim, L layers each side, V = vocabulary,
the forward pass costs

  encoder, per layer:  8 d^2 s (q, k, v, o)  + 4 s^2 d (scores, weighted sum)   + 4 d f s (FFN)
  decoder, per layer:  8 d^2 t (self q,k,v,o) + 4 t^2 d (self-attention, full t x t as executed)
                     + 4 d^2 t (cross q, o) + 4 d^2 s (cross k, v of the memory) + 4 t s d
                     + 4 d f t (FFN)
  output projection:   2 d V t

and training is 3x forward (backward = 2x forward): the `6 x params x tokens` rule with the
matmul parameters (embedding look-ups are free, the output projection is not) plus the
attention terms. LayerNorm, softmax, dropout and the loss are not counted (< 2% here).
"""
from typing import Dict, Iterable, Tuple

import numpy as np
import tensorflow as tf

from training.host_speed import matmul_rate


def forward_flops(source_lengths, target_lengths, d_model: int, num_layers: int, ffn_dim: int,
                  vocab_size: int) -> float:
  """Forward FLOPs of a batch given per-example real lengths (arrays [B])."""
  s = np.asarray(source_lengths, np.float64)
  t = np.asarray(target_lengths, np.float64)
  d, f, n = float(d_model), float(ffn_dim), float(num_layers)
  encoder = n * (8 * d * d * s + 4 * s * s * d + 4 * d * f * s)
  decoder = n * (8 * d * d * t + 4 * t * t * d + 4 * d * d * t + 4 * d * d * s + 4 * t * s * d
                 + 4 * d * f * t)
  output = 2 * d * vocab_size * t
  return float(np.sum(encoder + decoder + output))


def train_flops(source_lengths, target_lengths, **model) -> float:
  """Training FLOPs (forward + backward) of one batch: 3 x forward_flops."""
  return 3.0 * forward_flops(source_lengths, target_lengths, **model)


def lengths_of_batch(source: np.ndarray, target: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Real lengths from padded id matrices [B, S], [B, T] (padding id 0); rows without a
  target (all pad) get target length 0 and their source still counts for the encoder."""
  return (np.count_nonzero(source, axis=1), np.count_nonzero(target, axis=1))


def model_shapes(tokens: int, d_model: int, ffn_dim: int,
                 vocab_size: int) -> Iterable[Tuple[int, int, int]]:
  """The model's big matmuls for a batch of `tokens` rows: projections, FFN in/out, output."""
  return ((tokens, d_model, d_model), (tokens, d_model, ffn_dim), (tokens, ffn_dim, d_model),
          (tokens, d_model, vocab_size))


def matmul_ceiling(square: int = 1024, seconds: float = 1.0, shapes=()) -> Dict[str, float]:
  """Measured GFLOP/s: square x square matmul, and FLOP-weighted over `shapes`, fp32 and bf16.

  Returns:
    {matmul_gflops_fp32, matmul_gflops_bf16} and, with shapes, {matmul_gflops_model_fp32,
    matmul_gflops_model_bf16} (total FLOPs / total time over the shapes).
  """
  result = {}
  for name, dtype in (("fp32", tf.float32), ("bf16", tf.bfloat16)):
    result[f"matmul_gflops_{name}"] = matmul_rate(square, square, square, dtype, seconds)
    if shapes:
      flops = [2.0 * m * k * n for m, k, n in shapes]
      rates = [matmul_rate(m, k, n, dtype, seconds / len(flops)) for m, k, n in shapes]
      total_time = sum(fl / r for fl, r in zip(flops, rates))
      result[f"matmul_gflops_model_{name}"] = sum(flops) / total_time
  return result
