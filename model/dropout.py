"""Dropout that draws 16 random bits per element instead of a float32 uniform."""
import keras
import tensorflow as tf


class Dropout(keras.layers.Dropout):
  """keras.layers.Dropout with half the random numbers: a 16-bit draw per element.

  Keras draws one float32 uniform per element (Philox, 32 random bits each), which made dropout
  about a sixth of the train step's CPU time (docs/results.md, Throughput: the profile). Here
  each 32-bit draw is split into two 16-bit ones, so the same generator makes half the draws; an
  element is kept when its draw is >= round(rate * 2^16), i.e. the rate is taken to 1/65536
  (0.1 -> 0.100006), and kept elements are scaled by 1 / (1 - that rate), so the expectation is
  exact. Same seed generator (and so the same seeding and checkpointing) as the Keras layer;
  falls back to it for a `noise_shape` or an odd or unknown last dimension.
  """

  BITS = 16

  def call(self, inputs, training=False):
    last = inputs.shape[-1]
    if (not training or not 0.0 < self.rate < 1.0 or self.noise_shape is not None
        or last is None or last % 2):
      return super().call(inputs, training=training)
    threshold = min(int(round(self.rate * 2 ** self.BITS)), 2 ** self.BITS - 1)
    seed = self.seed_generator.next()
    seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)  # as Keras casts it
    shape = tf.shape(inputs)
    bits = tf.random.stateless_uniform(tf.concat([shape[:-1], [last // 2]], 0), seed,
                                       minval=None, maxval=None, dtype=tf.uint32)
    bits = tf.reshape(tf.bitcast(bits, tf.uint16), shape)
    keep = bits >= tf.constant(threshold, tf.uint16)
    scale = tf.cast(2 ** self.BITS / (2 ** self.BITS - threshold), inputs.dtype)
    return tf.where(keep, inputs * scale, tf.zeros_like(inputs))
