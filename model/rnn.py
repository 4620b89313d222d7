"""Bidirectional RNN encoder + attentional RNN decoder (registered as "rnn").

Encoder: `num_layers` bidirectional LSTM/GRU layers (Bahdanau et al. 2015). Decoder: one LSTM/GRU
layer initialised from the encoder's final states, with Luong et al. 2015 "general" attention
over the encoder outputs after the recurrent step (no input feeding, so teacher forcing runs as
one full-sequence RNN call). `encoder_summary` is the final state of every encoder layer and
direction, concatenated: the "hidden state at end of encoding" of seed 000.
"""
import keras
import tensorflow as tf

from model import outputs as out
from model.attention import masked_softmax
from model.dropout import Dropout
from model.seq2seq import Seq2Seq, register_architecture, target_mask

_CELLS = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


@register_architecture("rnn")
class RNNSeq2Seq(Seq2Seq):
  """Attentional RNN encoder-decoder; cross_attention is one layer with one head."""

  def __init__(self, config, source_vocab_size, target_vocab_size, **kwargs):
    super().__init__(name=kwargs.pop("name", "seq2seq"), **kwargs)
    if config.rnn_cell not in _CELLS:
      raise ValueError(f"rnn_cell must be one of {sorted(_CELLS)}, got {config.rnn_cell!r}")
    if config.d_model < 2 or config.d_model % 2 or config.num_layers < 1:
      raise ValueError(f"rnn needs an even d_model >= 2 (two directions of d_model/2) and "
                       f"num_layers >= 1, got d_model={config.d_model}, "
                       f"num_layers={config.num_layers}")
    if not 0.0 <= config.dropout < 1.0:
      raise ValueError(f"dropout must be in [0, 1), got {config.dropout}")
    c, d, rnn = config, config.d_model, _CELLS[config.rnn_cell]
    self.config, self.is_lstm = c, config.rnn_cell == "lstm"
    self.source_embedding = keras.layers.Embedding(source_vocab_size, d, name="source_embedding")
    self.target_embedding = keras.layers.Embedding(target_vocab_size, d, name="target_embedding")
    self.encoder_layers = [keras.layers.Bidirectional(
        rnn(d // 2, return_sequences=True, return_state=True), name=f"encoder_{i}")
        for i in range(c.num_layers)]
    self.bridge = keras.layers.Dense(d, activation="tanh", name="decoder_bridge")
    self.decoder_rnn = rnn(d, return_sequences=True, return_state=True, name="decoder_rnn")
    self.attention_w = keras.layers.Dense(d, use_bias=False, name="decoder_attention")
    self.combine = keras.layers.Dense(d, activation="tanh", name="decoder_combine")
    self.output_projection = keras.layers.Dense(target_vocab_size, name="decoder_output")
    self.dropout = Dropout(c.dropout)
    self.summary_dim = d * c.num_layers
    self.num_cross_attention_layers = 1
    self.num_attention_heads = 1

  def encode(self, source, training=None):
    mask = tf.not_equal(source, 0)
    x = self.dropout(self.source_embedding(source), training=training)
    finals = []
    for layer in self.encoder_layers:
      results = layer(x, mask=mask, training=training)
      x = results[0]
      # LSTM: [out, h_f, c_f, h_b, c_b]; GRU: [out, h_f, h_b]. The summary uses the h states.
      finals += [results[1], results[3]] if self.is_lstm else [results[1], results[2]]
    return {out.ENCODER_OUTPUTS: x, out.ENCODER_MASK: tf.cast(mask, tf.float32),
            out.ENCODER_SUMMARY: tf.concat(finals, axis=-1)}

  def _initial_state(self, encoded):
    top = encoded[out.ENCODER_SUMMARY][:, -self.config.d_model:]  # last layer, both directions
    h = self.bridge(top)
    return [h, tf.zeros_like(h)] if self.is_lstm else [h]

  def _attend(self, h, encoded, training=None):
    """h [B, T, D] -> (logits float32 [B, T, V], probabilities [B, 1, T, S])."""
    memory = encoded[out.ENCODER_OUTPUTS]
    scores = tf.einsum("btd,bsd->bts", tf.cast(self.attention_w(h), tf.float32),
                       tf.cast(memory, tf.float32))
    probs = masked_softmax(scores, encoded[out.ENCODER_MASK][:, None, :])
    context = tf.einsum("bts,bsd->btd", tf.cast(probs, memory.dtype), memory)
    hidden = self.combine(tf.concat([context, tf.cast(h, memory.dtype)], axis=-1))
    hidden = self.dropout(hidden, training=training)
    return tf.cast(self.output_projection(hidden), tf.float32), probs[:, None]

  def decode(self, batch, encoded, training=None):
    target_in = batch["target_in"]
    y = self.dropout(self.target_embedding(target_in), training=training)
    h = self.decoder_rnn(y, initial_state=self._initial_state(encoded), training=training)[0]
    logits, probs = self._attend(h, encoded, training=training)
    return dict(encoded, **{out.LOGITS: logits, out.CROSS_ATTENTION: [probs],
                            out.TARGET_MASK: target_mask(target_in)})

  def init_decode_state(self, encoded, max_length=None):
    """{"rnn": [h] (GRU) or [h, c] (LSTM), each [B, D]}; max_length is not needed."""
    del max_length
    return {"rnn": self._initial_state(encoded)}

  def decode_step(self, tokens, step, state, encoded):
    """tokens int32 [B] -> (float32 logits [B, V], new state); `step` is unused."""
    del step
    y = self.target_embedding(tokens)
    h, new_state = self.decoder_rnn.cell(y, state["rnn"], training=False)
    logits, _ = self._attend(h[:, None], encoded)
    return logits[:, 0], {"rnn": list(new_state)}
