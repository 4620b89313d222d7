"""A few steps in each precision: finite, decreasing loss (float16 through the loss-scale
optimizer, which scales the combined loss once; heads' losses stay float32)."""
import dataclasses

import keras
import numpy as np
import pytest

from heads.spec import parse_heads_spec
from tests_support import tiny_config
from training.components import build_components
from training.step import make_train_step


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_precision_trains_with_finite_decreasing_loss(tmp_path, copy_corpus, precision):
  config = tiny_config(tmp_path / precision, copy_corpus, False, precision=precision,
                       learning_rate=3e-3, warmup_steps=5)
  config = dataclasses.replace(config, heads=parse_heads_spec("attention_entropy:weight=0.01"))
  try:
    c = build_components(config)
    if precision == "mixed_float16":
      assert isinstance(c.optimizer, keras.optimizers.LossScaleOptimizer)
    step = make_train_step(c.model, c.heads, c.combiner, c.optimizer)
    iterator = iter(c.bundle.train_dataset(512, 0))
    losses = []
    for _ in range(25):
      result = step(next(iterator))
      assert result["loss/translation"].dtype.name == "float32"
      losses.append(float(result["loss/translation"]))
  finally:
    keras.mixed_precision.set_global_policy("float32")
  assert np.all(np.isfinite(losses)), losses
  assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.5, losses


def _matmul_dtypes(policy):
  import collections  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from configs.config import ModelConfig  # pylint: disable=import-outside-toplevel
  from model.seq2seq import build_model  # pylint: disable=import-outside-toplevel
  keras.mixed_precision.set_global_policy(policy)
  try:
    model = build_model(ModelConfig(d_model=16, num_layers=2, num_heads=2, ffn_dim=32), 30, 30)
    batch = {"source": tf.constant([[5, 6, 3]]), "target_in": tf.constant([[2, 5, 6]])}
    forward = tf.function(lambda b: model(b, training=True), autograph=False)
    graph = forward.get_concrete_function(batch).graph
  finally:
    keras.mixed_precision.set_global_policy("float32")
  return collections.Counter(op.get_attr("T").name for op in graph.get_operations()
                             if op.type in ("MatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum"))


def test_mixed_bfloat16_runs_every_matmul_in_bfloat16():
  """The policy reaches the kernels: every MatMul/Einsum of the Transformer's forward pass (45 in
  this 2+2 model) is bfloat16 under mixed_bfloat16 and float32 under float32."""
  mixed, full = _matmul_dtypes("mixed_bfloat16"), _matmul_dtypes("float32")
  assert set(mixed) == {"bfloat16"} and sum(mixed.values()) >= 40, mixed
  assert set(full) == {"float32"} and sum(full.values()) == sum(mixed.values()), full


def test_auto_precision_is_bfloat16_only_where_it_is_native():
  from training.hardware import resolve_precision
  avx2 = "vendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx avx2 fma\n"
  bf16 = avx2.replace("avx2", "avx2 avx512f avx512_bf16")
  assert resolve_precision("auto", avx2, gpus=[]) == "float32"
  assert resolve_precision("auto", bf16, gpus=[]) == "mixed_bfloat16"
  assert resolve_precision("auto", avx2.replace("avx2", "avx2 amx_bf16"), gpus=[]) == \
      "mixed_bfloat16"
  assert resolve_precision("auto", "Features\t: fp asimd\n", gpus=[]) == "float32"
  assert resolve_precision("auto", avx2, gpus=[("GPU:0", (8, 0))]) == "mixed_bfloat16"
  assert resolve_precision("auto", bf16, gpus=[("GPU:0", (7, 5))]) == "mixed_float16"
  for given in ("float32", "mixed_bfloat16", "mixed_float16"):
    assert resolve_precision(given, avx2, gpus=[]) == given  # an explicit choice is kept


def test_components_carry_the_resolved_precision(tmp_path, copy_corpus):
  from training.hardware import resolve_precision
  config = tiny_config(tmp_path / "w", copy_corpus, False)
  config = dataclasses.replace(config, train=dataclasses.replace(config.train, precision="auto"))
  c = build_components(config)
  assert c.config.train.precision == resolve_precision("auto") != "auto"
  assert keras.mixed_precision.global_policy().name == c.config.train.precision
  keras.mixed_precision.set_global_policy("float32")
