"""Learning-rate schedules."""
import keras
import tensorflow as tf


class InverseSqrtWarmup(keras.optimizers.schedules.LearningRateSchedule):
  """Linear warm-up to `peak` over `warmup` steps, then peak * sqrt(warmup / step).

  Vaswani et al. 2017 ("Attention Is All You Need"), parameterised by the peak rate.
  """

  def __init__(self, peak: float, warmup: int):
    if peak <= 0 or warmup < 1:
      raise ValueError(f"need peak > 0 and warmup >= 1, got peak={peak}, warmup={warmup}")
    self.peak = float(peak)
    self.warmup = int(warmup)
    # Multiplied in by LR control (plateau / newbob); saved in checkpoints.
    self.scale = tf.Variable(1.0, trainable=False, dtype=tf.float32, name="lr_scale")

  def __call__(self, step):
    step = tf.cast(step, tf.float32) + 1.0
    warm = tf.cast(self.warmup, tf.float32)
    return self.scale * self.peak * tf.minimum(step / warm, tf.sqrt(warm / step))

  def get_config(self):
    return {"peak": self.peak, "warmup": self.warmup}
