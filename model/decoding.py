"""Greedy and beam search over `decode_step` (cached, incremental), plus an uncached reference.

Ids: pad 0, BOS 2, EOS 3; pad and BOS are never generated. Every search returns int32 [B, L]:
the best hypothesis without BOS, ending with EOS (unless the length limit was hit), 0 after it;
L is the longest hypothesis in the batch, at most min(max_length, 2 * longest source + 10).
The loops are `tf.while_loop`s, so wrapping a search in `tf.function` (as evaluation/evaluate.py
does) traces it once for all shapes.
"""
import tensorflow as tf

from data.special_ids import BOS, EOS
from model import outputs as out

_NEG = -1e9


def _no_pad_or_bos(logits):
  """float32 logits [..., V] with pad (0) and BOS given a large finite negative."""
  vocab = tf.shape(logits)[-1]
  banned = tf.one_hot(0, vocab) + tf.one_hot(BOS, vocab)
  return logits + banned * _NEG


def max_output_length(source, max_length):
  """min(max_length, 2 * longest real source + 10) as an int32 scalar (source [B, S])."""
  longest = tf.reduce_max(tf.reduce_sum(tf.cast(tf.not_equal(source, 0), tf.int32), axis=1))
  return tf.minimum(tf.cast(max_length, tf.int32), 2 * longest + 10)


def _write(ids, step, tokens):
  """ids [..., L] with `tokens` [...] written at position `step`."""
  return ids + tf.one_hot(step, tf.shape(ids)[-1], dtype=tf.int32) * tokens[..., None]


def _trim(ids):
  """ids [B, L] -> [B, L'] with L' the longest hypothesis (pad is never generated inside one)."""
  longest = tf.reduce_max(tf.reduce_sum(tf.cast(tf.not_equal(ids, 0), tf.int32), axis=1))
  return ids[:, :tf.maximum(longest, 1)]


def greedy_search(model, source, max_length):
  """Argmax decoding with the incremental state. source int32 [B, S] -> int32 [B, L]."""
  encoded = model.encode(source, training=False)
  length = max_output_length(source, max_length)
  batch = tf.shape(source)[0]
  state = model.init_decode_state(encoded, length)

  def body(step, tokens, state, ids, finished):
    logits, state = model.decode_step(tokens, step, state, encoded)
    nxt = tf.argmax(_no_pad_or_bos(logits), -1, output_type=tf.int32)
    nxt = tf.where(finished, 0, nxt)
    return step + 1, nxt, state, _write(ids, step, nxt), finished | tf.equal(nxt, EOS)

  def cond(step, tokens, state, ids, finished):
    return (step < length) & ~tf.reduce_all(finished)

  loop_vars = (tf.constant(0), tf.fill([batch], BOS), state, tf.zeros([batch, length], tf.int32),
               tf.zeros([batch], tf.bool))
  return _trim(tf.while_loop(cond, body, loop_vars)[3])


def greedy_search_uncached(model, source, max_length):
  """Reference greedy search without any cache: every step re-runs the decoder on the whole
  prefix (teacher-forcing path `model.decode`, encoder run once). Same output as greedy_search;
  O(L^2) decoder work, so it is also the baseline for a caching benchmark."""
  encoded = model.encode(source, training=False)
  length = max_output_length(source, max_length)
  batch = tf.shape(source)[0]

  def body(step, prefix, finished):
    logits = model.decode({"target_in": prefix}, encoded, training=False)[out.LOGITS]
    nxt = tf.argmax(_no_pad_or_bos(logits[:, -1]), -1, output_type=tf.int32)
    nxt = tf.where(finished, 0, nxt)
    return step + 1, tf.concat([prefix, nxt[:, None]], 1), finished | tf.equal(nxt, EOS)

  def cond(step, prefix, finished):
    return (step < length) & ~tf.reduce_all(finished)

  _, prefix, _ = tf.while_loop(
      cond, body, (tf.constant(0), tf.fill([batch, 1], BOS), tf.zeros([batch], tf.bool)),
      shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, None]), tf.TensorShape([None])))
  return _trim(prefix[:, 1:])


def gnmt_penalty(lengths, alpha):
  """GNMT (Wu et al. 2016): ((5 + |Y|) / 6) ** alpha, |Y| counting the EOS."""
  return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, tf.cast(alpha, tf.float32))


def _reorder_state(model, state, origin, batch, beam):
  """Gathers the surviving beams' decoder state. Parts the model declares beam-invariant (the
  same for every beam of a sentence, e.g. the encoder's cross-attention keys and values) are
  left as they are: re-gathering them every step was most of the decoding time."""
  invariant = getattr(model, "beam_invariant_state", ())
  return {key: value if key in invariant else tf.nest.map_structure(
      lambda t: _gather_beams(t, origin, batch, beam), value) for key, value in state.items()}


def _gather_beams(tensor, indices, batch, beam):
  """tensor [B * K, ...] (beam-major within each example), indices [B, K'] -> [B * K', ...]."""
  shape = tf.shape(tensor)
  reshaped = tf.reshape(tensor, tf.concat([[batch, beam], shape[1:]], 0))
  picked = tf.gather(reshaped, indices, batch_dims=1)
  return tf.reshape(picked, tf.concat([[-1], shape[1:]], 0))


def _top(scores, k, *tensors):
  """The k best of `scores` [B, N] with the matching rows of each tensor [B, N, ...]."""
  best, index = tf.math.top_k(scores, k)
  return (best, index) + tuple(tf.gather(t, index, batch_dims=1) for t in tensors)


def beam_search(model, source, beam_size, length_penalty, max_length):
  """Beam search with the incremental state (alive / finished sets as in GNMT and tensor2tensor).

  Each step extends the K alive hypotheses and keeps the 2K best extensions; those ending in EOS
  and ranking among the first K join the finished set (scored log p / lp(|Y|)), the K best
  others go on as the alive set. The search stops at the length limit or once no alive
  hypothesis can beat the best finished one (log-probabilities only fall).

  Args:
    model: a Seq2Seq.
    source: int32 [B, S].
    beam_size: K >= 1.
    length_penalty: GNMT alpha (0 = plain log-probability).
    max_length: cap on output tokens.

  Returns:
    int32 [B, L]: the best finished hypothesis (the best alive one where none finished).
  """
  if beam_size < 1:
    raise ValueError(f"beam_size must be >= 1, got {beam_size}")
  batch, k, alpha = tf.shape(source)[0], beam_size, length_penalty
  encoded = model.encode(source, training=False)
  length = max_output_length(source, max_length)
  encoded = tf.nest.map_structure(lambda t: tf.repeat(t, k, axis=0), encoded)
  state = model.init_decode_state(encoded, length)
  first = tf.tile(tf.concat([[0.0], tf.fill([k - 1], _NEG)], 0)[None], [batch, 1])  # [B, K]
  ids = tf.zeros([batch, k, length], tf.int32)
  scorer = _BeamScorer(model, encoded, batch, k, length, alpha)
  loop_vars = (tf.constant(0), tf.fill([batch * k], BOS), state, ids, first,
               ids, tf.fill([batch, k], _NEG))
  result = tf.while_loop(scorer.cond, scorer.body, loop_vars)
  alive_ids, finished_ids, finished_scores = result[3][:, 0], result[5][:, 0], result[6][:, 0]
  return _trim(tf.where((finished_scores > _NEG / 2)[:, None], finished_ids, alive_ids))


class _BeamScorer:
  """cond/body of the beam-search loop over (step, tokens [B*K], state, alive_ids [B, K, L],
  alive_logp [B, K], finished_ids [B, K, L], finished_scores [B, K])."""

  def __init__(self, model, encoded, batch, beam, length, alpha):
    self.model, self.encoded = model, encoded
    self.batch, self.beam, self.length, self.alpha = batch, beam, length, alpha

  def cond(self, step, tokens, state, alive_ids, alive_logp, finished_ids, finished_scores):
    # Log-probabilities only fall, so an alive hypothesis scores at most logp / max lp.
    max_lp = tf.maximum(gnmt_penalty(step + 1, self.alpha),
                        gnmt_penalty(self.length, self.alpha))
    hopeless = tf.reduce_all(alive_logp[:, 0] / max_lp < finished_scores[:, 0])
    return (step < self.length) & ~hopeless

  def body(self, step, tokens, state, alive_ids, alive_logp, finished_ids, finished_scores):
    b, k = self.batch, self.beam
    logits, state = self.model.decode_step(tokens, step, state, self.encoded)
    log_probs = tf.nn.log_softmax(_no_pad_or_bos(logits))
    vocab = tf.shape(log_probs)[-1]
    total = tf.reshape(alive_logp[:, :, None] + tf.reshape(log_probs, [b, k, vocab]), [b, -1])
    cand_logp, flat = tf.math.top_k(total, 2 * k)  # [B, 2K]
    origin, token = flat // vocab, flat % vocab
    cand_ids = _write(tf.gather(alive_ids, origin, batch_dims=1), step, token)
    is_eos = tf.equal(token, EOS)
    eos_neg = tf.cast(is_eos, tf.float32) * _NEG
    # Alive: the K best extensions that do not end here.
    alive_logp, _, alive_ids, origin, token = _top(cand_logp + eos_neg, k, cand_ids, origin,
                                                   token)
    state = _reorder_state(self.model, state, origin, b, k)
    # Finished: the K best of the old finished set and the extensions ending with EOS that rank
    # among the K best extensions (as in fairseq; so beam_size 1 is greedy search).
    final = is_eos & (tf.range(2 * k) < k)[None]
    new_scores = cand_logp / gnmt_penalty(step + 1, self.alpha) + tf.where(final, 0.0, _NEG)
    finished_scores, _, finished_ids = _top(
        tf.concat([finished_scores, new_scores], 1), k,
        tf.concat([finished_ids, cand_ids], 1))
    return (step + 1, tf.reshape(token, [-1]), state, alive_ids, alive_logp, finished_ids,
            finished_scores)


class _PrefixRecompute:
  """`model` seen through a decode_step without cache: the state is the prefix buffer [N, L]
  (BOS first) and every step re-runs the decoder on the whole prefix (teacher-forcing path
  `model.decode`). The reference for cached beam search and the baseline of bench/beam_speed.py."""

  beam_invariant_state = ()

  def __init__(self, model):
    self.model = model

  def encode(self, source, training=False):
    return self.model.encode(source, training=training)

  def init_decode_state(self, encoded, max_length):
    rows = tf.shape(encoded[out.ENCODER_MASK])[0]
    return {"prefix": tf.zeros([rows, max_length], tf.int32)}

  def decode_step(self, tokens, step, state, encoded):
    prefix = _write(state["prefix"], step, tokens)
    logits = self.model.decode({"target_in": prefix[:, :step + 1]}, encoded,
                               training=False)[out.LOGITS]
    return logits[:, -1], {"prefix": prefix}


def beam_search_uncached(model, source, beam_size, length_penalty, max_length):
  """beam_search without the incremental state: O(L^2) decoder work, same output (the surviving
  beams' prefixes are re-gathered each step exactly as the cache would be)."""
  return beam_search(_PrefixRecompute(model), source, beam_size, length_penalty, max_length)


def decode(model, source, beam_size, length_penalty, max_length):
  """Greedy search for beam_size 1, else beam search. source int32 [B, S] -> int32 [B, L]."""
  if beam_size <= 1:
    return greedy_search(model, source, max_length)
  return beam_search(model, source, beam_size, length_penalty, max_length)
