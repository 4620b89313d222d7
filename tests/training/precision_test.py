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
