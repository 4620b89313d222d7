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
  end (Li et al., ICLR 2020, "Budgeted training"); `total` is --train_steps, or under
  --lr_schedule=linear_time the step EndFitter moves it to (a variable, saved in checkpoints).
  """

  def __init__(self, peak: float, warmup: int, total: int):
    super().__init__(peak, warmup)
    if total <= warmup:
      raise ValueError(f"need total > warmup, got total={total}, warmup={warmup}")
    self.total = tf.Variable(int(total), trainable=False, dtype=tf.int64, name="lr_end")

  def decay(self, step):
    total = tf.cast(self.total, tf.float32)
    return tf.maximum(0.0, (total - step + 1.0) / (total - float(self.warmup)))

  def get_config(self):
    return {**super().get_config(), "total": int(self.total.numpy())}


class EndFitter:
  """--lr_schedule=linear_time: moves the linear schedule's end so that it lands on the
  --max_minutes deadline of this run on this host.

  At every `refit` the end becomes the step reached if the steps left take as long as the steps
  so far (their mean time, validations apart) plus the validations they include take as long as
  those so far; it stays within (warmup, bound] and after the current step. Before the first
  validation its time is unknown and counted as 0; later refits correct for it. Times are
  seconds from any one clock (the loop passes time.time()); `start` is when timing began, at
  `start_step` (the loop: the end of this process's first step, which traces the graph),
  `deadline` when training must stop.
  """

  def __init__(self, schedule: LinearWarmupDecay, bound: int, eval_every: int, start_step: int,
               start: float, deadline: float):
    self.schedule, self.bound, self.eval_every = schedule, int(bound), int(eval_every)
    self.start_step, self.start, self.deadline = int(start_step), float(start), float(deadline)
    self.eval_seconds, self.evals = 0.0, 0

  def record_eval(self, seconds: float) -> None:
    self.eval_seconds += float(seconds)
    self.evals += 1

  def fitted_end(self, step: int, now: float) -> int:
    """The end step the times so far give at `step` (pure: assigns nothing)."""
    done = step - self.start_step
    if done <= 0:
      return int(self.schedule.total.numpy())
    per_step = max(now - self.start - self.eval_seconds, 1e-9) / done
    if self.evals and self.eval_every:
      per_step += self.eval_seconds / self.evals / self.eval_every
    left = int(max(self.deadline - now, 0.0) / per_step)
    return min(max(step + left, step + 1, self.schedule.warmup + 1), self.bound)

  def refit(self, step: int, now: float) -> int:
    end = self.fitted_end(step, now)
    self.schedule.total.assign(end)
    return end


def make_schedule(train) -> WarmupSchedule:
  """The schedule `train` (a TrainConfig) names; --warmup_steps=0 warms up over one step."""
  warmup = max(train.warmup_steps, 1)
  if train.lr_schedule in ("linear", "linear_time"):
    return LinearWarmupDecay(train.learning_rate, warmup, train.train_steps)
  return InverseSqrtWarmup(train.learning_rate, warmup)
