"""`--mode=diagnose` (seed 004): why does nothing train? Per loss term and variable group.

Runs a few training batches and reports, for every loss term, the gradient norm per variable group
(embeddings, encoder, decoder, each head, combiner); variables whose gradient is exactly zero in
every term, or that no term reaches (unconnected); non-finite losses and gradients attributed to
the term that produced them; and dead outputs (encoder outputs / summary that are constant across
the batch). Errors make the exit status non-zero.
"""
import dataclasses
from typing import Dict, List

import numpy as np
import tensorflow as tf

from model import outputs as out
from training.step import compute_losses, trainable_variables


@dataclasses.dataclass
class Report:
  errors: List[str] = dataclasses.field(default_factory=list)
  warnings: List[str] = dataclasses.field(default_factory=list)
  group_norms: Dict[str, Dict[str, float]] = dataclasses.field(default_factory=dict)

  def lines(self) -> List[str]:
    rows = ["gradient norm per loss term and variable group:"]
    for term, groups in self.group_norms.items():
      cells = ", ".join(f"{g}={n:.3g}" for g, n in sorted(groups.items()))
      rows.append(f"  {term}: {cells}")
    rows += [f"error: {e}" for e in self.errors] + [f"warning: {w}" for w in self.warnings]
    rows.append(f"diagnosis: {len(self.errors)} error(s), {len(self.warnings)} warning(s)")
    return rows


def variable_group(path: str, head_names) -> str:
  """embeddings | encoder | decoder | head/<name> | combiner | other, from a variable path."""
  lowered = path.lower()
  for name in head_names:
    if lowered.startswith(name + "/") or f"/{name}/" in lowered:
      return f"head/{name}"
  for group in ("combiner", "embed", "encoder", "decoder"):
    if group in lowered:
      return "embeddings" if group == "embed" else group
  return "other"


def _zero_matrices(variables) -> list:
  """Weight matrices (rank >= 2: kernels, embeddings) that are entirely zero."""
  return [v.path for v in variables if len(v.shape) >= 2 and not np.any(v.numpy())]


def _zero_cause(variable, zero_matrices) -> str:
  if zero_matrices:
    return f"no gradient flows through the all-zero weights {', '.join(zero_matrices[:3])}"
  if not np.any(variable.numpy()):
    return "its value is all zeros and so are the inputs it multiplies"
  return "the inputs it sees are all zero or saturated"


def diagnose(components, batches, steps: int = 2) -> Report:
  """Gradient diagnosis over `steps` batches (no weights are changed)."""
  model, heads = components.model, components.heads
  variables = trainable_variables(model, heads, components.combiner)
  head_names = [h.head_name for h in heads]
  report = Report()
  seen_nonzero = np.zeros(len(variables), bool)
  reached = np.zeros(len(variables), bool)
  for _, batch in zip(range(steps), batches):
    with tf.GradientTape(persistent=True) as tape:
      outputs, losses, _, _ = compute_losses(model, heads, batch, training=True)
    _check_outputs(outputs, report)
    for term, loss in losses.items():
      if not np.isfinite(float(loss)):
        report.errors.append(f"loss term {term!r} is {float(loss)} (head {term.split('/')[0]!r})")
        continue
      grads = tape.gradient(loss, variables)
      norms = report.group_norms.setdefault(term, {})
      for i, (g, v) in enumerate(zip(grads, variables)):
        if g is None:
          continue
        reached[i] = True
        g = tf.convert_to_tensor(g).numpy()
        if not np.all(np.isfinite(g)):
          report.errors.append(f"non-finite gradient of {v.path} from loss term {term!r}")
          continue
        seen_nonzero[i] |= bool(np.any(g))
        group = variable_group(v.path, head_names)
        norms[group] = float(np.sqrt(norms.get(group, 0.0) ** 2 + np.sum(g.astype(np.float64) ** 2)))
    del tape
  zero_matrices = _zero_matrices(variables)
  for path in zero_matrices:
    report.errors.append(f"{path}: all-zero weight matrix (a zero initialiser?); gradients "
                         "cannot flow through it to anything before it")
  for i, v in enumerate(variables):
    if not reached[i]:
      report.warnings.append(f"{v.path}: no loss term reaches it (unconnected)")
    elif not seen_nonzero[i]:
      report.errors.append(f"{v.path}: gradient exactly zero in every loss term; "
                           f"{_zero_cause(v, zero_matrices)}")
  return report


def _check_outputs(outputs, report: Report) -> None:
  for key in (out.ENCODER_OUTPUTS, out.ENCODER_SUMMARY):
    value = tf.cast(outputs[key], tf.float32).numpy()
    if value.shape[0] > 1 and np.all(np.std(value, axis=0) == 0):
      message = f"{key} is identical for every example in the batch (dead encoder)"
      if message not in report.errors:
        report.errors.append(message)
