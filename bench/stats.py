"""Statistics for multi-seed comparisons: mean with a 95% t interval, and a paired bootstrap of
corpus BLEU between two systems (sacreBLEU's own paired test, as `sacrebleu --paired-bs`)."""
import math
from typing import Dict, Sequence

import numpy as np

# Two-sided 95% Student t quantiles t_{0.975, df} for df = 1..30 (standard tables); above 30
# the normal 1.96 is within 2% of the exact value.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
  if df < 1:
    raise ValueError(f"need at least 2 values for an interval, got df={df}")
  return _T975[df - 1] if df <= len(_T975) else 1.96


def mean_ci(values: Sequence[float]) -> Dict[str, float]:
  """{"mean", "half_width", "n"}: the 95% interval is mean +- half_width (t with n-1 df; half
  width NaN for a single value: one run decides nothing)."""
  x = np.asarray([v for v in values if v is not None], np.float64)
  if x.size == 0:
    return {"mean": math.nan, "half_width": math.nan, "n": 0}
  if x.size == 1:
    return {"mean": float(x[0]), "half_width": math.nan, "n": 1}
  sem = x.std(ddof=1) / math.sqrt(x.size)
  return {"mean": float(x.mean()), "half_width": float(t975(x.size - 1) * sem), "n": int(x.size)}


def format_ci(ci: Dict[str, float], digits: int = 2) -> str:
  if ci["n"] == 0:
    return "–"
  if ci["n"] == 1:
    return f"{ci['mean']:.{digits}f} (1 run)"
  return f"{ci['mean']:.{digits}f} ± {ci['half_width']:.{digits}f}"


def paired_bootstrap_bleu(baseline: Sequence[str], system: Sequence[str],
                          references: Sequence[str], samples: int = 1000) -> Dict[str, float]:
  """sacreBLEU's paired bootstrap resampling (Koehn 2004) of `system` against `baseline` on the
  same sentences: {"baseline", "system", "p_value"} (BLEU; p for "no difference")."""
  from sacrebleu.metrics import BLEU  # pylint: disable=import-outside-toplevel
  from sacrebleu.significance import PairedTest  # pylint: disable=import-outside-toplevel
  if not len(baseline) == len(system) == len(references):
    raise ValueError(f"lengths differ: baseline {len(baseline)}, system {len(system)}, "
                     f"references {len(references)}")
  test = PairedTest([("baseline", list(baseline)), ("system", list(system))],
                    {"BLEU": BLEU()}, [list(references)], test_type="bs", n_samples=samples)
  _, results = test()
  base, other = results["BLEU"]
  return {"baseline": float(base.score), "system": float(other.score),
          "p_value": float(other.p_value)}
