"""Learning-rate schedules (`--lr_schedule`)."""
import keras
import tensorflow as tf


class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
  """Linear warm-up to `peak` over `warmup` steps, then a decay; `scale` is multiplied in by LR
  control (plateau / newbob) and saved in checkpoints."""

  def __init__(self, peak: float, warmup: int):
    if peak <= 0 or warmup < 1:
      raise ValueError(f"need peak > 0 and warmup >= 1, got peak={peak}, warmup={warmup}")
    self.peak = float(peak)
    self.warmup = int(warmup)
    self.scale = tf.Variable(1.0, trainable=False, dtype=tf.float32, name="lr_scale")

  def __call__(self, step):
    step = tf.cast(step, tf.float32) + 1.0
    return self.scale * self.peak * tf.minimum(step / float(self.warmup), self.decay(step))

  def decay(self, step):
    raise NotImplementedError

  def get_config(self):
    return {"peak": self.peak, "warmup": self.warmup}


class InverseSqrtWarmup(WarmupSchedule):
  """Then peak * sqrt(warmup / step): Vaswani et al. 2017, parameterised by the peak rate."""

  def decay(self, step):
    return tf.sqrt(float(self.warmup) / step)


class LinearWarmupDecay(WarmupSchedule):
  """Then linearly to 0 at step `total` (and 0 after it).

  For a fixed budget of steps, decaying to zero at its end does better than a schedule with no
  end (Li et al., ICLR 2020, "Budgeted training"); `total` is --train_steps.
  """

  def __init__(self, peak: float, warmup: int, total: int):
    super().__init__(peak, warmup)
    if total <= warmup:
      raise ValueError(f"need total > warmup, got total={total}, warmup={warmup}")
    self.total = int(total)

  def decay(self, step):
    return tf.maximum(0.0, (self.total - step + 1.0) / float(self.total - self.warmup))

  def get_config(self):
    return {**super().get_config(), "total": self.total}


def make_schedule(train) -> WarmupSchedule:
  """The schedule `train` (a TrainConfig) names; --warmup_steps=0 warms up over one step."""
  warmup = max(train.warmup_steps, 1)
  if train.lr_schedule == "linear":
    return LinearWarmupDecay(train.learning_rate, warmup, train.train_steps)
  return InverseSqrtWarmup(train.learning_rate, warmup)
