"""The Transformer encoder-decoder as a Seq2Seq (registered as "transformer")."""
import keras
import tensorflow as tf

from model import outputs as out
from model.layers import Pooling, TokenEmbedding
from model.seq2seq import Seq2Seq, default_max_length, register_architecture, target_mask
from model.transformer import TransformerDecoder, TransformerEncoder


@register_architecture("transformer")
class TransformerSeq2Seq(Seq2Seq):
  """Pre-LN Transformer (Vaswani et al. 2017; Xiong et al. 2020) with sinusoidal positions.

  With `tie_embeddings` and equal vocabulary sizes, one embedding serves the source, the target
  and (transposed) the output projection (Press & Wolf 2017); otherwise each has its own.
  ENCODER_SUMMARY pools the encoder outputs over real positions (`config.summary`).
  """

  def __init__(self, config, source_vocab_size, target_vocab_size, **kwargs):
    super().__init__(name=kwargs.pop("name", "seq2seq"), **kwargs)
    c = config
    if min(source_vocab_size, target_vocab_size) < 4:
      raise ValueError(f"vocabulary sizes must be >= 4 (pad/unk/bos/eos), got "
                       f"{source_vocab_size}, {target_vocab_size}")
    self.config = c
    self.tied = c.tie_embeddings and source_vocab_size == target_vocab_size
    self.source_embedding = TokenEmbedding(source_vocab_size, c.d_model, c.dropout,
                                           name="source_embedding")
    self.target_embedding = (self.source_embedding if self.tied else TokenEmbedding(
        target_vocab_size, c.d_model, c.dropout, name="target_embedding"))
    self.encoder = TransformerEncoder(c.d_model, c.num_layers, c.num_heads, c.ffn_dim, c.dropout,
                                      name="encoder")
    self.decoder = TransformerDecoder(c.d_model, c.num_layers, c.num_heads, c.ffn_dim, c.dropout,
                                      name="decoder")
    self.pooling = Pooling(c.summary, name="summary")
    self.output_projection = None
    if not self.tied:
      self.output_projection = keras.layers.Dense(target_vocab_size, name="output_projection")
    self.summary_dim = c.d_model
    self.num_cross_attention_layers = c.num_layers
    self.num_attention_heads = c.num_heads

  def _logits(self, x):
    """[B, T, D] -> float32 [B, T, V]."""
    if self.output_projection is None:
      return self.target_embedding.logits(x)
    return tf.cast(self.output_projection(x), tf.float32)

  def encode(self, source, training=None):
    mask = tf.cast(tf.not_equal(source, 0), tf.float32)
    x = self.encoder(self.source_embedding(source, training=training), mask, training=training)
    return self.derive_from_boundary({out.ENCODER_OUTPUTS: x, out.ENCODER_MASK: mask})

  # The summary pools the encoder outputs, so the outputs alone are the boundary.
  boundary_keys = (out.ENCODER_OUTPUTS,)

  def derive_from_boundary(self, encoded):
    pooled = self.pooling(encoded[out.ENCODER_OUTPUTS], encoded[out.ENCODER_MASK])
    return dict(encoded, **{out.ENCODER_SUMMARY: pooled})

  def decode(self, batch, encoded, training=None):
    target_in = batch["target_in"]
    y = self.target_embedding(target_in, training=training)
    y, attention = self.decoder(y, encoded[out.ENCODER_OUTPUTS], encoded[out.ENCODER_MASK],
                                training=training)
    return dict(encoded, **{out.LOGITS: self._logits(y), out.CROSS_ATTENTION: attention,
                            out.TARGET_MASK: target_mask(target_in)})

  # Decoder state that is the same for every beam of one sentence (never re-gathered).
  beam_invariant_state = ("memory_kv",)

  def init_decode_state(self, encoded, max_length=None):
    """{"cache": per layer {"k", "v"} [B, H, L, D/H] zeros, "memory_kv": per layer (k, v)
    [B, H, S, D/H] of the encoder outputs (projected once)}."""
    memory = encoded[out.ENCODER_OUTPUTS]
    length = default_max_length(encoded[out.ENCODER_MASK], max_length)
    return {"cache": self.decoder.init_cache(tf.shape(memory)[0], length, memory.dtype),
            "memory_kv": self.decoder.memory_kv(memory)}

  def decode_step(self, tokens, step, state, encoded):
    """tokens int32 [B] at position `step` -> (float32 logits [B, V], new state)."""
    y = self.target_embedding(tokens[:, None], offset=step, training=False)
    y, cache = self.decoder.step(y, step, state["cache"], state["memory_kv"],
                                 encoded[out.ENCODER_MASK])
    return self._logits(y)[:, 0], {"cache": cache, "memory_kv": state["memory_kv"]}
