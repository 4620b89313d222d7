"""Terminal progress line (only on a terminal) and periodic log lines (always, to stderr)."""
import sys
import time

from absl import logging


class Progress:
  """Shows `step/total loss tok/s ETA`; redraws one line on a TTY, logs every `log_every` steps."""

  def __init__(self, total_steps: int, start_step: int, log_every: int, deadline: float = 0.0):
    """`deadline`: a time.time() at which training stops anyway (--max_minutes), or 0."""
    self.total = total_steps
    self.deadline = deadline
    self.start_step = start_step
    self.log_every = max(log_every, 1)
    self.start = time.time()
    self.tty = sys.stdout.isatty()
    self.tokens = 0.0

  def update(self, step: int, loss: float, tokens: float) -> None:
    self.tokens += tokens
    elapsed = max(time.time() - self.start, 1e-6)
    done = step - self.start_step
    tok_s = self.tokens / elapsed
    eta = (self.total - step) * elapsed / max(done, 1)
    if self.deadline:
      eta = max(min(eta, self.deadline - time.time()), 0.0)
    line = (f"step {step}/{self.total} loss {loss:.4f} {tok_s:,.0f} tgt tok/s "
            f"ETA {int(eta // 60)}m{int(eta % 60):02d}s")
    if self.tty:
      sys.stdout.write("\r" + line.ljust(79))
      sys.stdout.flush()
    if step % self.log_every == 0 or step == self.total:
      logging.info(line)

  def tokens_per_second(self) -> float:
    return self.tokens / max(time.time() - self.start, 1e-6)

  def close(self) -> None:
    if self.tty:
      sys.stdout.write("\n")
      sys.stdout.flush()
