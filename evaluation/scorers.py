"""Corpus-level translation metrics (sacreBLEU) in a registry; each knows its direction.

Scores are computed on detokenised text with sacreBLEU's defaults (BLEU: 13a tokenisation, cased;
chrF: character 6-grams, beta 2; TER: case-sensitive), and reported with sacreBLEU's signature so
that numbers can be compared with other papers and tools.
"""
import dataclasses
from typing import Callable, Dict, Sequence

from sacrebleu.metrics import BLEU, CHRF, TER

from configs.errors import UserError


@dataclasses.dataclass(frozen=True)
class Scorer:
  """A named corpus metric. `make` returns a fresh sacreBLEU metric object."""
  name: str
  make: Callable[[], object]
  higher_is_better: bool


_SCORERS: Dict[str, Scorer] = {}


def register_scorer(scorer: Scorer) -> Scorer:
  if scorer.name in _SCORERS:
    raise ValueError(f"scorer {scorer.name!r} is already registered")
  _SCORERS[scorer.name] = scorer
  return scorer


register_scorer(Scorer("bleu", BLEU, higher_is_better=True))
register_scorer(Scorer("chrf", CHRF, higher_is_better=True))
register_scorer(Scorer("ter", TER, higher_is_better=False))


def registered_scorers() -> tuple:
  """Names of the registered scorers (bleu, chrf, ter, ...)."""
  return tuple(sorted(_SCORERS))


def get_scorer(name: str) -> Scorer:
  if name not in _SCORERS:
    raise UserError(f"unknown scorer {name!r}; known: {', '.join(sorted(_SCORERS))}")
  return _SCORERS[name]


def score_corpus(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
  """Every registered metric on one reference stream.

  Returns:
    {"bleu": float, "chrf": float, "ter": float, "signature": {"bleu": "...", ...},
     "bleu_detail": "BP = ... ratio = ..."}.
  """
  if len(hypotheses) != len(references):
    raise UserError(f"{len(hypotheses)} hypotheses but {len(references)} references")
  result, signatures = {}, {}
  for name, scorer in sorted(_SCORERS.items()):
    metric = scorer.make()
    score = metric.corpus_score(list(hypotheses), [list(references)])
    result[name] = round(float(score.score), 4)
    signatures[name] = str(metric.get_signature())
    if name == "bleu":
      result["bleu_brevity_penalty"] = round(float(score.bp), 4)
      result["bleu_length_ratio"] = round(float(score.sys_len / max(score.ref_len, 1)), 4)
  result["signature"] = signatures
  return result


def higher_is_better(metric: str) -> bool:
  """Direction of any reported metric: a scorer's own, or a head metric by its last name part."""
  base = metric.split("/")[-1]
  if base in _SCORERS:
    return _SCORERS[base].higher_is_better
  lower = ("loss", "nll", "perplexity", "mae", "mse", "ter", "error")
  return not any(base == word or base.endswith("_" + word) for word in lower)
