"""The Seq2Seq model contract and the architecture registry.

Every architecture fills the same outputs dict (model/outputs.py) from `call(batch, training)`,
and offers `encode`, `decode` (teacher forcing on given encoder outputs) and the incremental
`init_decode_state` / `decode_step` used by beam search.
"""
from typing import Callable, Dict

import keras
import tensorflow as tf

from configs.config import ModelConfig
from configs.errors import UserError
from model import outputs as out

_ARCHITECTURES: Dict[str, Callable] = {}


def register_architecture(name: str):
  def decorate(cls):
    if name in _ARCHITECTURES:
      raise ValueError(f"architecture {name!r} is already registered")
    _ARCHITECTURES[name] = cls
    return cls
  return decorate


class Seq2Seq(keras.Model):
  """Base class: subclasses implement encode, decode, init_decode_state and decode_step.

  Attributes (for heads): summary_dim, num_cross_attention_layers, num_attention_heads.
  """
  summary_dim: int
  num_cross_attention_layers: int
  num_attention_heads: int

  def call(self, batch, training=None):
    encoded = self.encode(batch["source"], training=training)
    return self.decode(batch, encoded, training=training)

  def encode(self, source, training=None) -> dict:
    raise NotImplementedError

  def decode(self, batch, encoded, training=None) -> dict:
    raise NotImplementedError

  def init_decode_state(self, encoded, max_length):
    raise NotImplementedError

  def decode_step(self, tokens, step, state, encoded):
    raise NotImplementedError


def target_mask(target_in: tf.Tensor) -> tf.Tensor:
  return tf.cast(tf.not_equal(target_in, 0), tf.float32)


def build_model(config: ModelConfig, source_vocab_size: int, target_vocab_size: int) -> Seq2Seq:
  """Constructs the architecture and builds its variables on a tiny dummy batch."""
  import model.rnn  # noqa: F401  (registers "rnn")
  import model.transformer_model  # noqa: F401  (registers "transformer")
  if config.model not in _ARCHITECTURES:
    raise UserError(f"unknown model {config.model!r}; known models: "
                    f"{', '.join(sorted(_ARCHITECTURES))}")
  model = _ARCHITECTURES[config.model](config, source_vocab_size, target_vocab_size)
  dummy = {"source": tf.constant([[4, 3]], tf.int32), "target_in": tf.constant([[2, 4]], tf.int32)}
  model(dummy, training=False)
  return model


__all__ = ["Seq2Seq", "build_model", "register_architecture", "target_mask", "out"]
