"""The Seq2Seq model contract and the architecture registry.

Every architecture fills the same outputs dict (model/outputs.py) from `call(batch, training)`:

  LOGITS [B, T, V] float32, ENCODER_OUTPUTS [B, S, D], ENCODER_MASK [B, S] float32,
  ENCODER_SUMMARY [B, D'], CROSS_ATTENTION list (one per decoder layer) of float32 [B, H, T, S],
  TARGET_MASK [B, T] float32 (target_in != 0).

and offers `encode`, `decode` (teacher forcing on given encoder outputs; the training step uses
it to detach the encoder boundary) and the incremental `init_decode_state` / `decode_step` used
by model/decoding.py. Architectures register with `@register_architecture("name")`.
"""
from typing import Callable, Dict

import keras
import tensorflow as tf

from configs.config import ModelConfig
from configs.errors import UserError
from model import outputs as out

_ARCHITECTURES: Dict[str, Callable] = {}


def register_architecture(name: str):
  """Class decorator: makes `cls(config, source_vocab_size, target_vocab_size)` buildable."""
  def decorate(cls):
    if name in _ARCHITECTURES:
      raise ValueError(f"architecture {name!r} is already registered")
    _ARCHITECTURES[name] = cls
    return cls
  return decorate


def known_architectures():
  """Sorted names of the registered architectures."""
  _import_builtins()
  return sorted(_ARCHITECTURES)


class Seq2Seq(keras.Model):
  """Base class of the architectures.

  Subclasses construct every sublayer in `__init__` and implement `encode`, `decode`,
  `init_decode_state` and `decode_step`.

  Attributes (read by heads, see heads/base.py HeadContext):
    summary_dim: width D' of ENCODER_SUMMARY.
    num_cross_attention_layers: len(CROSS_ATTENTION).
    num_attention_heads: H of every CROSS_ATTENTION tensor.
  """
  summary_dim: int
  num_cross_attention_layers: int
  num_attention_heads: int
  # The encoder-side outputs that gradient combiners and `--log_grad_stats_every` differentiate
  # with respect to (the shared boundary). Every term's gradient must be expressed on the same
  # tensors, or dot products between terms read zero: an output computed *from* the boundary
  # (e.g. a pooled summary) is re-derived from it by `derive_from_boundary` instead.
  boundary_keys = out.ENCODER_SIDE

  def derive_from_boundary(self, encoded: dict) -> dict:
    """`encoded` with the outputs that are functions of `boundary_keys` recomputed from them."""
    return encoded

  def call(self, batch, training=None):
    """batch: dict with `source` int32 [B, S] and `target_in` int32 [B, T]; other keys ignored."""
    encoded = self.encode(batch["source"], training=training)
    return self.decode({"target_in": batch["target_in"]}, encoded, training=training)

  def encode(self, source, training=None) -> dict:
    """source int32 [B, S] -> {ENCODER_OUTPUTS, ENCODER_MASK, ENCODER_SUMMARY}."""
    raise NotImplementedError

  def decode(self, batch, encoded, training=None) -> dict:
    """Teacher forcing: batch["target_in"] [B, T] + `encoded` -> the full outputs dict."""
    raise NotImplementedError

  def init_decode_state(self, encoded, max_length=None):
    """Initial incremental-decoding state for `encoded` (from `encode`).

    Args:
      encoded: dict from `encode`, batch B.
      max_length: most steps `decode_step` will be called for (int or int32 scalar); default
        2 * S + 10 (S = padded source length), the longest that model/decoding.py asks for.

    Returns:
      A nested structure of tensors, each batch-major ([B, ...]) so that beam search can
      tf.gather / reshape every leaf.
    """
    raise NotImplementedError

  def decode_step(self, tokens, step, state, encoded):
    """tokens int32 [B] at position `step` (int32 scalar) -> (float32 logits [B, V], state)."""
    raise NotImplementedError


def default_max_length(encoded_mask, max_length=None):
  """`max_length`, or 2 * S + 10 for an encoder mask [B, S]."""
  if max_length is not None:
    return max_length
  return 2 * tf.shape(encoded_mask)[1] + 10


def target_mask(target_in: tf.Tensor) -> tf.Tensor:
  """float32 [B, T]: 1 where target_in != 0 (BOS at position 0 counts; an all-pad row is 0)."""
  return tf.cast(tf.not_equal(target_in, 0), tf.float32)


def _import_builtins():
  import model.rnn  # noqa: F401  (registers "rnn")
  import model.transformer_model  # noqa: F401  (registers "transformer")


def build_model(config: ModelConfig, source_vocab_size: int, target_vocab_size: int) -> Seq2Seq:
  """Constructs the architecture `config.model` and builds its variables on a tiny dummy batch.

  Raises:
    UserError: unknown `config.model` (the message lists the known ones).
  """
  known = known_architectures()
  if config.model not in known:
    raise UserError(f"unknown model {config.model!r}; known models: {', '.join(known)}")
  model = _ARCHITECTURES[config.model](config, source_vocab_size, target_vocab_size)
  dummy = {"source": tf.constant([[4, 3]], tf.int32), "target_in": tf.constant([[2, 4]], tf.int32)}
  model(dummy, training=False)
  return model
