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


def model_group(path: str) -> str:
  """embeddings | encoder | decoder | other, from a model variable's path."""
  lowered = path.lower()
  for group in ("embed", "encoder", "decoder"):
    if group in lowered:
      return "embeddings" if group == "embed" else group
  return "other"


def variable_names(components, variables):
  """(group, display name) per variable; heads' and the combiner's by ownership."""
  owner = {id(v): "combiner" for v in components.combiner.trainable_variables}
  for head in components.heads:
    owner.update({id(v): f"head/{head.head_name}" for v in head.trainable_variables})
  result = []
  for v in variables:
    group = owner.get(id(v))
    result.append((group, f"{group}/{v.path}") if group else (model_group(v.path), v.path))
  return result


def _zero_cause(variable, zero_matrices) -> str:
  if zero_matrices:
    return f"no gradient flows through the all-zero weights {', '.join(zero_matrices[:3])}"
  if not np.any(variable.numpy()):
    return "its value is all zeros and so are the inputs it multiplies"
  return "the inputs it sees are all zero or saturated"


class _Tally:
  """What the diagnosed batches showed, per variable and per head."""

  def __init__(self, n):
    self.reached = np.zeros(n, bool)
    self.nonzero = np.zeros(n, bool)
    self.labelled = set()  # heads with at least one labelled example


def diagnose(components, batches, steps: int = 2) -> Report:
  """Gradient diagnosis over `steps` batches (no weights are changed)."""
  model, heads = components.model, components.heads
  variables = trainable_variables(model, heads, components.combiner)
  names = variable_names(components, variables)
  report, tally = Report(), _Tally(len(variables))
  for _, batch in zip(range(steps), batches):
    with tf.GradientTape(persistent=True) as tape:
      outputs, losses, _, counts = compute_losses(model, heads, batch, training=True)
    _check_outputs(outputs, report)
    for term, loss in losses.items():
      if float(counts[term]) > 0:
        tally.labelled.add(term.split("/")[0])
      _diagnose_term(term, loss, tape.gradient(loss, variables), variables, names, report, tally)
    del tape
  _report_variables(variables, names, report, tally)
  for head in heads:
    if head.head_name not in tally.labelled:
      report.warnings.append(f"head {head.head_name!r}: no labelled example in the diagnosed "
                             "batches, so its gradients are zero")
  return report


def _diagnose_term(term, loss, grads, variables, names, report, tally) -> None:
  if not np.isfinite(float(loss)):
    report.errors.append(f"loss term {term!r} is {float(loss)} (head {term.split('/')[0]!r})")
    return
  norms = report.group_norms.setdefault(term, {})
  for i, (g, (group, name)) in enumerate(zip(grads, names)):
    if g is None:
      continue
    tally.reached[i] = True
    g = tf.convert_to_tensor(g).numpy().astype(np.float64)
    if not np.all(np.isfinite(g)):
      report.errors.append(f"non-finite gradient of {name} from loss term {term!r}")
      continue
    tally.nonzero[i] |= bool(np.any(g))
    norms[group] = float(np.sqrt(norms.get(group, 0.0) ** 2 + np.sum(g ** 2)))


def _report_variables(variables, names, report, tally) -> None:
  zero_matrices = [name for v, (_, name) in zip(variables, names)
                   if len(v.shape) >= 2 and not np.any(v.numpy())]
  for name in zero_matrices:
    report.errors.append(f"{name}: all-zero weight matrix (a zero initialiser?); gradients "
                         "cannot flow through it to anything before it")
  for i, (v, (group, name)) in enumerate(zip(variables, names)):
    unlabelled = group.startswith("head/") and group[5:] not in tally.labelled
    if not tally.reached[i]:
      report.warnings.append(f"{name}: no loss term reaches it (unconnected)")
    elif not tally.nonzero[i] and not unlabelled:
      report.errors.append(f"{name}: gradient exactly zero in every loss term; "
                           f"{_zero_cause(v, zero_matrices)}")


def _check_outputs(outputs, report: Report) -> None:
  for key in (out.ENCODER_OUTPUTS, out.ENCODER_SUMMARY):
    value = tf.cast(outputs[key], tf.float32).numpy()
    if value.shape[0] > 1 and np.all(np.std(value, axis=0) == 0):
      message = f"{key} is identical for every example in the batch (dead encoder)"
      if message not in report.errors:
        report.errors.append(message)
