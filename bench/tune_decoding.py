"""Beam size, length penalty and checkpoint averaging chosen on validation; test scored once.

  python bench/tune_decoding.py --beams=1,4,6 --length_penalties=0.2,0.6,1.0,1.4 \
      --averages=0,5 -- --preset=multi30k_transformer --data_dir=../shared/data/multi30k \
      --workdir=/tmp/runs/m30k

Everything after `--` is main.py's flags for the trained run (its preset, data, workdir, e.g.
--keep_checkpoints). For each --averages value N the weights are restored once (N = 0: the best
checkpoint, else the last; N > 0: the average of the last N regular checkpoints; without
--averages, the run's own --average_last), every (beam, length penalty) pair decodes
--tune_split, and the combination with the highest BLEU (ties: the smaller beam, the penalty
nearer the default 0.6, then fewer checkpoints) decodes --test_split. Test is
never used to choose. Prints one JSON line per setting and a final JSON summary; --out writes
the summary.
"""
import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Callable, Dict, List, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

from configs.config import EvalConfig  # noqa: E402
from configs.errors import UserError  # noqa: E402

Setting = Tuple[int, float]


def parse_grid(beams: str, length_penalties: str) -> List[Setting]:
  """'1,4' and '0.6,1' -> [(1, 0.6), (1, 1.0), (4, 0.6), (4, 1.0)]."""
  try:
    beam_values = [int(b) for b in beams.split(",") if b.strip()]
    penalty_values = [float(a) for a in length_penalties.split(",") if a.strip()]
  except ValueError as e:
    raise UserError(f"--beams takes integers and --length_penalties numbers, comma-separated: "
                    f"{e}") from None
  if not beam_values or not penalty_values or min(beam_values) < 1 or min(penalty_values) < 0:
    raise UserError("--beams needs integers >= 1 and --length_penalties numbers >= 0")
  return [(b, a) for b in beam_values for a in penalty_values]


def parse_averages(text: str) -> List[int]:
  """'0,5,10' -> [0, 5, 10]: checkpoints averaged (0 = the best, else the last, checkpoint)."""
  try:
    values = [int(n) for n in text.split(",") if n.strip()]
  except ValueError as e:
    raise UserError(f"--averages takes integers >= 0, comma-separated: {e}") from None
  if not values or min(values) < 0:
    raise UserError(f"--averages={text}: needs integers >= 0, comma-separated")
  return values


def best_row(rows: Sequence[Dict]) -> Dict:
  """The row with the highest `bleu`; ties go to the smaller beam (faster decoding), then to the
  penalty nearer EvalConfig's default (0.6), then to fewer averaged checkpoints."""
  default = EvalConfig().length_penalty
  return max(rows, key=lambda r: (r["bleu"], -r["beam_size"],
                                  -abs(r["length_penalty"] - default), -r.get("average_last", 0)))


def best_setting(rows: Sequence[Dict]) -> Setting:
  """The (beam, length penalty) of best_row(rows)."""
  best = best_row(rows)
  return best["beam_size"], best["length_penalty"]


def score(components, eval_config, split: str, setting: Setting) -> Dict:
  """BLEU/chrF/TER of `split` decoded with `setting` (the heads' metrics are left out)."""
  from evaluation.evaluate import evaluate_split
  beam, penalty = setting
  cfg = dataclasses.replace(eval_config, beam_size=beam, length_penalty=penalty)
  metrics = evaluate_split(components, cfg, split)
  keep = ("bleu", "chrf", "ter", "bleu_brevity_penalty", "decode_seconds", "examples")
  return dict({k: metrics[k] for k in keep if k in metrics}, split=split, beam_size=beam,
              length_penalty=penalty)


def tune(components_for: Callable[[int], object], eval_config, grid: Sequence[Setting],
         averages: Sequence[int], tune_split: str, test_split: str) -> Dict:
  """components_for(N): the run's components restored with --average_last=N."""
  rows = []
  for n in averages:
    components = components_for(n)
    for setting in grid:
      rows.append(dict(score(components, eval_config, tune_split, setting), average_last=n))
      print(json.dumps(rows[-1]), flush=True)
  best = best_row(rows)
  chosen, chosen_average = (best["beam_size"], best["length_penalty"]), best["average_last"]
  default = (eval_config.beam_size, eval_config.length_penalty)
  summary = {"tuned_on": tune_split, "rows": rows, "chosen": list(chosen),
             "chosen_average_last": chosen_average, "config_default": list(default),
             "config_average_last": eval_config.average_last}
  if test_split:
    components = components_for(chosen_average) if chosen_average != averages[-1] else components
    summary["test"] = dict(score(components, eval_config, test_split, chosen),
                           average_last=chosen_average)
    if chosen != default:
      summary["test_with_config_default"] = score(components, eval_config, test_split, default)
  return summary


def main(argv: Sequence[str]) -> int:
  argv = list(argv)
  cut = argv.index("--") if "--" in argv else len(argv)
  own, main_flags = argv[:cut], argv[cut + 1:]
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--beams", default="1,4,6")
  parser.add_argument("--length_penalties", default="0.2,0.6,1.0,1.4")
  parser.add_argument("--tune_split", default="validation")
  parser.add_argument("--averages", default="",
                      help="comma list of checkpoints to average (0 = best/last checkpoint); "
                           "default: the run's --average_last")
  parser.add_argument("--test_split", default="test", help="'' to skip the test decode")
  parser.add_argument("--out", default="", help="write the summary JSON here")
  args = parser.parse_args(own)
  import flags as app_flags
  from flags import validation
  from training.modes import components_for_inference
  try:
    grid = parse_grid(args.beams, args.length_penalties)
    config = app_flags.config_from_argv(["main.py", *main_flags])
    averages = (parse_averages(args.averages) if args.averages
                else [config.eval.average_last])
    validation.check_averaged(f"--averages={args.averages}", max(averages),
                              config.train.keep_checkpoints)

    def components_for(n: int):
      eval_n = dataclasses.replace(config.eval, average_last=n)
      return components_for_inference(dataclasses.replace(config, eval=eval_n))

    start = time.time()
    summary = tune(components_for, config.eval, grid, averages, args.tune_split,
                   args.test_split)
  except UserError as e:
    sys.stderr.write(f"error: {e}\n")
    return 2
  summary["seconds"] = round(time.time() - start, 1)
  if args.out:
    with open(args.out, "w", encoding="utf-8") as f:
      json.dump(summary, f, indent=1)
  print(json.dumps({k: v for k, v in summary.items() if k != "rows"}))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
