"""The seed-000 experiment over seeds: translation + a price head on one encoder, same step
budget, many ways of sharing it; every row as mean ± 95% interval, paired bootstrap vs joint fixed.

Each (setup, row, seed) is one `main.py` run in its own workdir under --out. Its result (test and
validation scores, command, wall time) goes to RESULTS/<setup>/<row>/seed<k>.json and its test
translations to seed<k>.test.hyp.gz, both small and meant to be committed, so the experiment is
resumable across sessions: a (row, seed) with a result file is skipped.

  python bench/seed000.py --setup=default --seeds=5 --steps=600        # run what is missing
  python bench/seed000.py --setup=default --report                      # table + plot only

Setups: `default` (the embedded gettext en-de, listings mixed in at weight 0.3, a d_model 128 2+2
Transformer) and `multi30k` (../shared/data/multi30k + listings at 0.05, same model). Rows are
listed in ROWS; `tuned static` is not run itself: it is the `fixed w=...` row with the best
validation score (BLEU / BLEU of translation alone + price accuracy / accuracy of price alone).
The last stdout line of --report is one JSON object with every row's intervals.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import result_files, stats  # noqa: E402
from configs.errors import UserError  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MULTI30K_DIR = os.path.join(os.path.dirname(ROOT), "shared", "data", "multi30k")
MODEL = ["--d_model=128", "--ffn_dim=512", "--num_layers=2", "--num_heads=4"]
SETUPS = {
    "default": MODEL + ["--dataset=gettext", "--mix=tsv:0.3"],
    "multi30k": MODEL + ["--dataset=parallel_text", "--vocab_size=8000", "--mix=tsv:0.05",
                         f"--data_dir={MULTI30K_DIR}"],
}
STATIC_WEIGHTS = ("0.03", "0.1", "0.3", "1")
FIXED = ["--combiner=fixed"]  # rows written before the default combiner changed say it
NOCLIP = ["--noclip_per_term"]  # so do gradient-combiner rows measured before it clipped per term
PAPER = ["--balance_strategy=both", "--balance_relax=0.7", "--balance_target=1"]  # He et al.
ROWS = {
    "translation alone": ["--heads="] + FIXED,
    "price alone": ["--heads=translation:weight=0;price"] + FIXED,
    "joint fixed": ["--heads=price"] + FIXED,
    **{f"fixed w={w}": [f"--heads=price:weight={w}"] + FIXED for w in STATIC_WEIGHTS if w != "1"},
    "alternating 10:1": ["--heads=price", "--schedule=alternating", "--alternate_ratio=10"] + FIXED,
    "two optimizers": ["--heads=price", "--schedule=two_optimizers"] + FIXED,
    "uncertainty": ["--heads=price", "--combiner=uncertainty"],
    "gradnorm": ["--heads=price", "--combiner=gradnorm"] + NOCLIP,
    "pcgrad": ["--heads=price", "--combiner=pcgrad"] + NOCLIP,
    "mgda_ub": ["--heads=price", "--combiner=mgda_ub"] + NOCLIP,
    "metabalance": ["--heads=price", "--combiner=metabalance"] + PAPER + NOCLIP,
    "metabalance + clip per term": ["--heads=price", "--combiner=metabalance",
                                    "--clip_per_term"] + PAPER,
    "metabalance shrink": ["--heads=price", "--combiner=metabalance", "--balance_strategy=shrink",
                           "--balance_relax=1", "--balance_target=1"] + NOCLIP,
    "metabalance shrink 0.3": ["--heads=price", "--combiner=metabalance",
                               "--balance_strategy=shrink", "--balance_relax=1",
                               "--balance_target=0.3"] + NOCLIP,
    "metabalance shrink 0.1": ["--heads=price", "--combiner=metabalance",
                               "--balance_strategy=shrink", "--balance_relax=1",
                               "--balance_target=0.1"] + NOCLIP,
    # Gradient combiners over the weights at today's defaults (each term clipped alone).
    "gcs": ["--heads=price", "--combiner=gcs"],
    "bloop": ["--heads=price", "--combiner=bloop"],
    "task_moments": ["--heads=price", "--combiner=task_moments"],
    # The default since 2026-12-02 (the flags' defaults), spelled out.
    "metabalance shrink 0.3 + clip per term": ["--heads=price", "--combiner=metabalance",
                                               "--balance_strategy=shrink", "--balance_relax=1",
                                               "--balance_target=0.3", "--clip_per_term"],
}
BASELINE = "joint fixed"


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--setup", default="default", choices=sorted(SETUPS))
  parser.add_argument("--seeds", type=int, default=5, help="seeds 1..N")
  parser.add_argument("--steps", type=int, default=600)
  parser.add_argument("--only", default="", help="';'-separated row names (default: all)")
  parser.add_argument("--out", default="/tmp/auxseq_seed000", help="workdirs (large)")
  parser.add_argument("--results", default=os.path.join(ROOT, "bench", "results", "seed000"),
                      help="result files (small; commit them)")
  parser.add_argument("--report", action="store_true", help="only aggregate what is there")
  parser.add_argument("--bootstrap_samples", type=int, default=1000)
  parser.add_argument("--plot", default="", help="PNG with error bars (default docs/img/...)")
  return parser.parse_args(argv)


def _slug(name: str) -> str:
  return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def result_path(args, row: str, seed: int) -> str:
  return os.path.join(args.results, args.setup, _slug(row), f"seed{seed}.json")


def run_one(args, row: str, seed: int) -> dict:
  """Trains one (row, seed), scores it, writes its result files; returns the result."""
  workdir = os.path.join(args.out, args.setup, _slug(row), f"seed{seed}")
  command = [sys.executable, os.path.join(ROOT, "main.py"), f"--workdir={workdir}",
             f"--seed={seed}", f"--train_steps={args.steps}", f"--eval_every={args.steps}",
             f"--checkpoint_every={args.steps}", "--overwrite", *SETUPS[args.setup], *ROWS[row]]
  start = time.time()
  proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
  if proc.returncode != 0:
    raise RuntimeError(f"{row} seed {seed} failed: {proc.stderr.strip().splitlines()[-1:]}")
  final = json.loads(proc.stdout.strip().splitlines()[-1])
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    validation = [r for r in map(json.loads, f) if r.get("kind") == "validation"][-1]
  commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, cwd=ROOT).stdout.strip()
  result = {"row": row, "seed": seed, "setup": args.setup, "steps": args.steps, "commit": commit,
            "test": _scores(final), "validation": _scores(validation),
            "precision": result_files.run_precision(workdir),
            "wall_s": round(time.time() - start, 1), "command": " ".join(command[1:])}
  path = result_path(args, row, seed)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(os.path.join(workdir, "test.hyp"), "rb") as src, \
       gzip.open(path[:-len(".json")] + ".test.hyp.gz", "wb") as dst:
    dst.write(src.read())
  result_files.write_json(path, result)  # marks the run done: written last
  return result


def _scores(metrics: dict) -> dict:
  price = metrics.get("price", {})
  return {"bleu": metrics.get("bleu"), "chrf": metrics.get("chrf"),
          "price_accuracy": price.get("accuracy"), "price_macro_f1": price.get("macro_f1")}


def load_results(args) -> Dict[str, List[dict]]:
  return result_files.load_results(ROWS, args.seeds, lambda row, seed: result_path(args, row, seed))


def tuned_static(results: Dict[str, List[dict]]) -> str:
  """The static-weight row with the best validation score relative to the single-task rows
  (BLEU / translation alone's + price accuracy / price alone's, means over seeds)."""
  def mean(row, split, key):
    values = [r[split][key] for r in results.get(row, []) if r[split][key] is not None]
    return sum(values) / len(values) if values else None
  bleu_ref, acc_ref = mean("translation alone", "validation", "bleu"), mean(
      "price alone", "validation", "price_accuracy")
  candidates = {}
  for w in STATIC_WEIGHTS:
    row = BASELINE if w == "1" else f"fixed w={w}"
    bleu, acc = mean(row, "validation", "bleu"), mean(row, "validation", "price_accuracy")
    if None not in (bleu, acc, bleu_ref, acc_ref):
      candidates[row] = bleu / max(bleu_ref, 1e-9) + acc / max(acc_ref, 1e-9)
  return max(candidates, key=candidates.get) if candidates else ""


def references(args) -> List[str]:
  """Test references of the setup, read through auxseq's own data path (not stored)."""
  from flags import config_from_argv  # pylint: disable=import-outside-toplevel
  import data  # pylint: disable=import-outside-toplevel
  workdir = os.path.join(args.out, args.setup, "_references")
  config = config_from_argv(["main.py", f"--workdir={workdir}", *SETUPS[args.setup]])
  bundle = data.load_data(config.data, workdir, config.train.seed)
  return [t.decode("utf-8") for batch in bundle.eval_dataset("test", 256)
          for t in batch["target_text"].numpy()]


def _hypotheses(args, row: str, seed: int) -> List[str]:
  with gzip.open(result_path(args, row, seed)[:-len(".json")] + ".test.hyp.gz", "rt",
                 encoding="utf-8") as f:
    return f.read().rstrip("\n").split("\n")


def bootstrap_vs_baseline(args, results, refs: List[str]) -> Dict[str, dict]:
  """Pooled paired bootstrap: each row's test translations over its seeds, concatenated in seed
  order, against joint fixed's over the same seeds (seeds both rows have)."""
  base_seeds = {r["seed"] for r in results.get(BASELINE, [])}
  tests = {}
  for row, runs in results.items():
    seeds = sorted(base_seeds & {r["seed"] for r in runs})
    if row in (BASELINE, "price alone") or not seeds:
      continue
    system = [h for s in seeds for h in _hypotheses(args, row, s)]
    baseline = [h for s in seeds for h in _hypotheses(args, BASELINE, s)]
    tests[row] = dict(stats.paired_bootstrap_bleu(baseline, system, refs * len(seeds),
                                                  args.bootstrap_samples), seeds=len(seeds))
  return tests


def report(args) -> dict:
  results = load_results(args)
  tuned = tuned_static(results)
  try:
    tests = bootstrap_vs_baseline(args, results, references(args)) if results else {}
  except (UserError, OSError, ValueError) as e:  # the references need the setup's data here
    print(f"paired bootstrap skipped: {type(e).__name__}: {e}", file=sys.stderr)
    tests = {}
  table = {}
  print(f"| row ({args.setup}, {args.steps} steps) | seeds | test BLEU | chrF | price acc. | "
        f"price macro-F1 | BLEU vs {BASELINE} (pooled paired bootstrap) |")
  print("|---|---|---|---|---|---|---|")
  for row, runs in results.items():
    cis = {k: stats.mean_ci([r["test"][k] for r in runs])
           for k in ("bleu", "chrf", "price_accuracy", "price_macro_f1")}
    table[row] = dict(cis, bootstrap=tests.get(row), tuned_static=row == tuned)
    test = tests.get(row)
    versus = (f"{test['system'] - test['baseline']:+.2f}, p = {test['p_value']:.3f}" if test
              else "")
    name = f"{row} (tuned static)" if row == tuned else row
    print(f"| {name} | {len(runs)} | {stats.format_ci(cis['bleu'])} | "
          f"{stats.format_ci(cis['chrf'])} | {stats.format_ci(cis['price_accuracy'], 3)} | "
          f"{stats.format_ci(cis['price_macro_f1'], 3)} | {versus} |")
  precisions = precision_note(results)
  print(f"\nTrained in: {precisions}")
  if table:
    plot(args, table)
  summary = {"setup": args.setup, "steps": args.steps, "tuned_static": tuned, "rows": table,
             "precisions": precisions}
  print(json.dumps(summary))
  return summary


def precision_note(results: Dict[str, List[dict]]) -> str:
  """Which rows (seeds) trained in which precision (`result_files.PRECISION_BEFORE_AUTO` for
  runs recorded before the field existed)."""
  by_precision: Dict[str, Dict[str, List[int]]] = {}
  for row, runs in results.items():
    for r in runs:
      precision = r.get("precision", result_files.PRECISION_BEFORE_AUTO)
      by_precision.setdefault(precision, {}).setdefault(row, []).append(r["seed"])
  return "; ".join(f"{p}: {', '.join(f'{row} {seeds}' for row, seeds in rows.items())}"
                   for p, rows in sorted(by_precision.items()))


def plot(args, table) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  rows = list(table)
  fig, axes = plt.subplots(1, 2, figsize=(11, 0.4 * len(rows) + 1.5), sharey=True)
  for ax, key, label in ((axes[0], "bleu", "test BLEU"), (axes[1], "price_accuracy",
                                                          "price accuracy")):
    means = [table[r][key]["mean"] for r in rows]
    errors = [0 if table[r][key]["n"] < 2 else table[r][key]["half_width"] for r in rows]
    ax.errorbar(means, range(len(rows)), xerr=errors, fmt="o", capsize=3)
    ax.set_xlabel(f"{label} (mean ± 95% CI)")
    ax.grid(alpha=0.3)
  axes[0].set_yticks(range(len(rows)), rows)
  fig.suptitle(f"seed-000, {args.setup} setup, {args.steps} steps")
  fig.tight_layout()
  path = args.plot or os.path.join(ROOT, "docs", "img", f"seed000_{args.setup}.png")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(argv=None):
  args = parse_args(argv)
  seeds = [] if args.report else range(1, args.seeds + 1)  # --report: only aggregate what is there
  code = result_files.run_rows(args.only, ROWS, seeds,
                               lambda row, seed: result_path(args, row, seed),
                               lambda row, seed: run_one(args, row, seed),
                               lambda r: f"{json.dumps(r['test'])} ({r['wall_s']:.0f} s)")
  if code:
    return code
  report(args)
  return 0


if __name__ == "__main__":
  sys.exit(main())
