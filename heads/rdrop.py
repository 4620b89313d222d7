"""R-Drop: consistency between two dropout passes of the decoder's output distribution."""
import dataclasses

import tensorflow as tf

from configs.errors import UserError
from heads.base import Head, HeadOptions, LossTerm
from heads.registry import register_head
from model import outputs as out


@dataclasses.dataclass(frozen=True)
class RDropOptions(HeadOptions):
  """weight: R-Drop's alpha (the paper uses 0.3 to 5 depending on the task; 1 is unmeasured
  here)."""
  weight: float = 1.0


def symmetric_kl(logits_a, logits_b):
  """0.5 * (KL(p||q) + KL(q||p)) per position, p = softmax(a), q = softmax(b): [B, T]. Computed
  as 0.5 * sum_v (p - q)(log p - log q) from log-softmaxes (finite for any logits)."""
  log_p = tf.nn.log_softmax(tf.cast(logits_a, tf.float32), axis=-1)
  log_q = tf.nn.log_softmax(tf.cast(logits_b, tf.float32), axis=-1)
  return 0.5 * tf.reduce_sum((tf.exp(log_p) - tf.exp(log_q)) * (log_p - log_q), axis=-1)


@register_head("rdrop")
class RDropHead(Head):
  """R-Drop regulariser: symmetric KL between the output distributions of two forward passes.

  Reads: logits of this pass and of a second pass with its own dropout draw (the head sets
  `second_pass`, so the step runs the model twice: about twice the step time). Label: none
  (target_mask selects real target positions). Normaliser: target tokens. Paper: Wu et al.,
  NeurIPS 2021, "R-Drop: Regularized Dropout for Neural Networks" (there the cross-entropy of
  both passes is trained; here translation's cross-entropy is the first pass's, and the second
  pass learns through this term). Needs dropout > 0 to differ from zero.
  """
  reads = (out.LOGITS, out.SECOND_PASS, out.TARGET_MASK)
  labels = ()
  Options = RDropOptions
  second_pass = True

  def loss(self, outputs, batch, training):
    if out.SECOND_PASS not in outputs:
      raise UserError("head 'rdrop' needs the step's second forward pass, which per-term "
                      "gradients at the encoder boundary (--gradient_space=boundary) do not run; "
                      "use --gradient_space=weights")
    mask = tf.cast(outputs[out.TARGET_MASK], tf.float32)
    kl = symmetric_kl(outputs[out.LOGITS], outputs[out.SECOND_PASS][out.LOGITS])
    return LossTerm(tf.reduce_sum(kl * mask), tf.reduce_sum(mask))
