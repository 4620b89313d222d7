"""Greedy and beam search over `decode_step` (cached, incremental), plus an uncached reference.

Ids: pad 0, BOS 2, EOS 3. Results are int32 [B, L]: the best hypothesis without BOS, ending with
EOS (unless the length limit was hit), 0 after it.
"""
import tensorflow as tf

from model import outputs as out

BOS, EOS = 2, 3
_NEG = -1e9


def _no_pad_or_bos(logits):
  """Padding and BOS are never generated: their logits get a large negative."""
  vocab = tf.shape(logits)[-1]
  banned = tf.one_hot(0, vocab) + tf.one_hot(BOS, vocab)
  return logits + banned * _NEG


def max_output_length(source, max_length):
  """min(max_length, 2 * longest source + 10) as an int32 scalar."""
  longest = tf.reduce_max(tf.reduce_sum(tf.cast(tf.not_equal(source, 0), tf.int32), axis=1))
  return tf.minimum(tf.constant(max_length, tf.int32), 2 * longest + 10)


def greedy_search(model, source, max_length):
  """Argmax decoding with the incremental state. source int32 [B, S] -> int32 [B, L]."""
  encoded = model.encode(source, training=False)
  length = max_output_length(source, max_length)
  batch = tf.shape(source)[0]
  state = model.init_decode_state(encoded, length)
  ids = tf.zeros([batch, length], tf.int32)
  tokens = tf.fill([batch], BOS)
  finished = tf.zeros([batch], tf.bool)

  def body(step, tokens, state, ids, finished):
    logits, state = model.decode_step(tokens, step, state, encoded)
    logits = _no_pad_or_bos(logits)
    nxt = tf.where(finished, 0, tf.argmax(logits, -1, output_type=tf.int32))
    ids = ids + tf.one_hot(step, length, dtype=tf.int32)[None] * nxt[:, None]
    return step + 1, nxt, state, ids, finished | tf.equal(nxt, EOS)

  def cond(step, tokens, state, ids, finished):
    return (step < length) & ~tf.reduce_all(finished)

  _, _, _, ids, _ = tf.while_loop(cond, body, (tf.constant(0), tokens, state, ids, finished))
  return ids


def greedy_search_uncached(model, source, max_length):
  """Reference: recompute the whole prefix at every step (no cache). Same output as greedy."""
  encoded = model.encode(source, training=False)
  length = max_output_length(source, max_length)
  batch = tf.shape(source)[0]
  prefix = tf.fill([batch, 1], BOS)
  finished = tf.zeros([batch], tf.bool)
  for _ in tf.range(length):
    tf.autograph.experimental.set_loop_options(
        shape_invariants=[(prefix, tf.TensorShape([None, None]))])
    logits = model.decode({"target_in": prefix}, encoded, training=False)[out.LOGITS]
    nxt = tf.where(finished, 0, tf.argmax(_no_pad_or_bos(logits[:, -1]), -1,
                                          output_type=tf.int32))
    finished = finished | tf.equal(nxt, EOS)
    prefix = tf.concat([prefix, nxt[:, None]], axis=1)
  ids = prefix[:, 1:]
  return tf.pad(ids, [[0, 0], [0, length - tf.shape(ids)[1]]])


def _tile(tensor, beam):
  """[B, ...] -> [B * beam, ...] (each row repeated beam times)."""
  return tf.repeat(tensor, beam, axis=0)


def _gather_beams(tensor, indices, batch, beam):
  """Picks beams: tensor [B * K, ...], indices [B, K] -> [B * K, ...]."""
  shape = tf.shape(tensor)
  reshaped = tf.reshape(tensor, tf.concat([[batch, beam], shape[1:]], 0))
  return tf.reshape(tf.gather(reshaped, indices, batch_dims=1), shape)


def length_penalty(lengths, alpha):
  """GNMT (Wu et al. 2016): ((5 + |Y|) / 6) ** alpha."""
  return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, alpha)


def beam_search(model, source, beam_size, alpha, max_length):
  """Beam search with the incremental state. source int32 [B, S] -> best int32 [B, L]."""
  batch, k = tf.shape(source)[0], beam_size
  encoded = model.encode(source, training=False)
  length = max_output_length(source, max_length)
  encoded = tf.nest.map_structure(lambda t: _tile(t, k), encoded)
  state = model.init_decode_state(encoded, length)
  scores = tf.tile(tf.concat([[0.0], tf.fill([k - 1], _NEG)], 0)[None], [batch, 1])  # [B, K]
  ids = tf.zeros([batch, k, length], tf.int32)
  tokens = tf.fill([batch * k], BOS)
  finished = tf.zeros([batch, k], tf.bool)

  def body(step, tokens, state, ids, scores, finished):
    logits, state = model.decode_step(tokens, step, state, encoded)
    logits = _no_pad_or_bos(logits)
    vocab = tf.shape(logits)[-1]
    log_probs = tf.reshape(tf.nn.log_softmax(logits), [batch, k, vocab])
    pad_only = tf.concat([[0.0], tf.fill([vocab - 1], _NEG)], 0)  # finished beams: pad, no cost
    log_probs = tf.where(finished[:, :, None], pad_only[None, None], log_probs)
    total = tf.reshape(scores[:, :, None] + log_probs, [batch, k * vocab])
    scores, flat = tf.math.top_k(total, k)
    beam, token = flat // vocab, flat % vocab
    ids = tf.gather(ids, beam, batch_dims=1)
    ids = ids + tf.one_hot(step, length, dtype=tf.int32)[None, None] * token[:, :, None]
    finished = tf.gather(finished, beam, batch_dims=1) | tf.equal(token, EOS)
    state = tf.nest.map_structure(lambda t: _gather_beams(t, beam, batch, k), state)
    return step + 1, tf.reshape(token, [-1]), state, ids, scores, finished

  def cond(step, tokens, state, ids, scores, finished):
    return (step < length) & ~tf.reduce_all(finished)

  _, _, _, ids, scores, _ = tf.while_loop(
      cond, body, (tf.constant(0), tokens, state, ids, scores, finished))
  lengths = tf.reduce_sum(tf.cast(tf.not_equal(ids, 0), tf.int32), axis=2)
  best = tf.argmax(scores / length_penalty(lengths, alpha), axis=1, output_type=tf.int32)
  return tf.gather(ids, best, batch_dims=1)


def decode(model, source, beam_size, length_penalty_alpha, max_length):
  """Greedy for beam_size 1, else beam search."""
  if beam_size <= 1:
    return greedy_search(model, source, max_length)
  return beam_search(model, source, beam_size, length_penalty_alpha, max_length)
