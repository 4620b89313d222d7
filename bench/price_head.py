"""The price head against a bag-of-n-grams baseline, on the same listings split and buckets.

The baseline row is TF-IDF over word 1-2-grams and character 2-5-grams (within word bounds) with
a multinomial logistic regression, C chosen on the validation split; its rows, split and price
buckets come from auxseq's own code (`data.prepare` for the md5 split the head trains on,
`heads.price.price_edges` / `bucketize` for the training-quantile buckets), and its scores from
`heads.classifier.classification_results`, as the head's. scikit-learn is a bench-only
dependency: it is imported here only.

Every other row is one `main.py` run per seed in its own workdir under --out; its result (test
and best-validation price scores, command, wall time) goes to RESULTS/<row>/seed<k>.json, which
marks it done, so the bench resumes where it stopped.

  python bench/price_head.py --only="alone attention" --seeds=3    # run what is missing
  python bench/price_head.py --report                               # baseline + table only
  python bench/price_head.py --text_columns=name,room_type,neighbourhood --only=alone --seeds=3

With --text_columns other than `name`, the baseline and every row read the listing's text made
of those columns (`--tsv_text_columns`; same split, same buckets), and their result files go to
RESULTS/text_<columns>/: a table of its own.

The last stdout line is one JSON object: the baseline and every row's intervals over seeds.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time
from typing import Dict, List, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import result_files, stats  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)
# Price alone: the listings are the only data (no translation, vocabulary from the titles);
# validation every 100 steps keeps the checkpoint with the best validation price accuracy.
ALONE = ["--dataset=tsv", "--mix=", "--eval_every=100", "--select_metric=price/accuracy"]
# The default job (gettext en-de + listings at 0.15, price;domain;attention_entropy, 1500 steps,
# last checkpoint), scored once on validation at its end.
JOINT = ["--eval_every=1500"]
ROWS: Dict[str, List[str]] = {
    "alone": ALONE + ["--heads=price"],
    "alone attention": ALONE + ["--heads=price", "--summary=attention"],
    "alone smoothing 0.1, head dropout 0.3": ALONE + [
        "--heads=price:label_smoothing=0.1,dropout=0.3"],
    "alone dropout 0.3": ALONE + ["--heads=price", "--dropout=0.3"],
    "alone subword alpha 0.2": ALONE + ["--heads=price", "--subword_alpha=0.2"],
    "alone vocab 1000": ALONE + ["--heads=price", "--vocab_size=1000"],
    "alone ema 0.998": ALONE + ["--heads=price", "--ema_decay=0.998"],
    "alone regularised": ALONE + ["--heads=price:label_smoothing=0.1,dropout=0.3",
                                  "--dropout=0.3", "--ema_decay=0.998", "--summary=attention"],
    "alone attention + subword alpha 0.2, 2000 steps": ALONE + [
        "--heads=price", "--summary=attention", "--subword_alpha=0.2", "--train_steps=2000"],
    "joint": JOINT,
    "joint attention": JOINT + ["--summary=attention"],
}


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seeds", type=int, default=1, help="seeds 1..N")
  parser.add_argument("--from_seed", type=int, default=1,
                      help="run only seeds from_seed..N (e.g. beside a run of the lower ones)")
  parser.add_argument("--only", default="", help="';'-separated row names (default: all)")
  parser.add_argument("--out", default="/tmp/auxseq_price_head", help="workdirs (large)")
  parser.add_argument("--results", default=os.path.join(ROOT, "bench", "results", "price_head"),
                      help="result files (small; commit them)")
  parser.add_argument("--report", action="store_true", help="run nothing; baseline + table")
  parser.add_argument("--data_dir", default="", help="listings TSV of the baseline row ('' = "
                      "the embedded one, which every main.py row trains on)")
  parser.add_argument("--buckets", type=int, default=5, help="price buckets (training quantiles)")
  parser.add_argument("--data_cache_dir", default="", help="auxseq's prepared-data cache")
  parser.add_argument("--text_columns", default="name", help="the listing columns the text is "
                      "made of (main.py --tsv_text_columns), for the baseline and every row")
  args = parser.parse_args(argv)
  if args.text_columns != "name":
    args.results = os.path.join(args.results, "text_" + _slug(args.text_columns))
    args.out = os.path.join(args.out, "text_" + _slug(args.text_columns))
  return args


def reader_options(text_columns: str) -> dict:
  """The tsv reader's options for `text_columns`, as main.py's --tsv_text_columns gives them."""
  from configs.config import DataConfig  # pylint: disable=import-outside-toplevel
  from data import reader_options as options_of  # pylint: disable=import-outside-toplevel
  return options_of(DataConfig(tsv_text_columns=tuple(text_columns.split(","))), "tsv")


def listings(data_dir: str = "", buckets: int = 5, cache_dir: str = "",
             text_columns: str = "name") -> Dict[str, tuple]:
  """{split: (texts, bucket ids)} of the priced listings, as the price head sees them: the
  prepared `tsv` source (md5 split, float32 prices) and the head's edges from its label facts."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from data import prepare as prep  # pylint: disable=import-outside-toplevel
  from heads.price import PriceOptions, bucketize, price_edges  # pylint: disable=import-outside-toplevel
  source = prep.prepare("tsv", data_dir, "en", "de", cache_dir or prep.default_cache_dir(),
                        options=reader_options(text_columns))
  edges = tf.constant(price_edges(PriceOptions(buckets=buckets),
                                  np.asarray(source.labels["prices"], np.float64)))
  splits = {}
  for split in ("train", "validation", "test"):
    rows = source.rows(split)
    labels = bucketize(tf.constant([r["price"] for r in rows], tf.float32), edges).numpy()
    keep = labels >= 0  # a masked price has no bucket, for the head as here
    splits[split] = ([r["source"] for r, k in zip(rows, keep) if k], labels[keep])
  return splits


def ngram_baseline(splits: Dict[str, tuple], c_grid: Sequence[float] = C_GRID,
                   cv_folds: int = 5) -> dict:
  """TF-IDF word 1-2 + char 2-5 grams, logistic regression; C best on validation accuracy.
  Also: a linear SVM and complement naive Bayes on the same features (each tuned on validation)
  and the logistic regression's k-fold accuracy over all titles (`cross_validated`)."""
  from scipy.sparse import hstack  # pylint: disable=import-outside-toplevel
  from sklearn.linear_model import LogisticRegression  # pylint: disable=import-outside-toplevel
  from sklearn.metrics import confusion_matrix  # pylint: disable=import-outside-toplevel
  from sklearn.naive_bayes import ComplementNB  # pylint: disable=import-outside-toplevel
  from sklearn.svm import LinearSVC  # pylint: disable=import-outside-toplevel
  from heads.classifier import classification_results  # pylint: disable=import-outside-toplevel
  vectorizers = _vectorizers()
  train_text, train_y = splits["train"]
  features = {"train": hstack([v.fit_transform(train_text) for v in vectorizers]).tocsr()}
  for split in ("validation", "test"):
    features[split] = hstack([v.transform(splits[split][0]) for v in vectorizers]).tocsr()
  classes = int(max(y.max() for _, y in splits.values())) + 1

  def scores(model, split):
    matrix = confusion_matrix(splits[split][1], model.predict(features[split]),
                              labels=list(range(classes)))
    return {k: round(v, 4) for k, v in classification_results({"confusion": matrix}).items()}

  def pick(make, grid):  # the grid value best on validation accuracy (first of equals)
    fitted = {g: make(g).fit(features["train"], train_y) for g in grid}
    on_validation = {g: scores(m, "validation") for g, m in fitted.items()}
    best = max(grid, key=lambda g: on_validation[g]["accuracy"])
    return best, on_validation, fitted[best]

  best, by_c, model = pick(lambda c: LogisticRegression(C=c, max_iter=3000), c_grid)
  result = {"C": best, "validation": by_c[best], "test": scores(model, "test"),
            "validation_by_C": {str(c): by_c[c]["accuracy"] for c in c_grid},
            "train_examples": len(train_y)}
  # Other linear text classifiers on the same features, each tuned on validation: how far the
  # titles' n-grams go, not only one model.
  for name, make, grid in (("linear_svm", lambda c: LinearSVC(C=c), (0.03, 0.1, 0.3, 1.0)),
                           ("complement_nb", lambda a: ComplementNB(alpha=a), (0.1, 0.3, 1.0))):
    value, on_validation, fitted = pick(make, grid)
    result[name] = {"param": value, "validation": on_validation[value]["accuracy"],
                    "test": scores(fitted, "test")["accuracy"]}
  result["cv"] = cross_validated(splits, best, folds=cv_folds)
  return result


def cross_validated(splits: Dict[str, tuple], c: float, folds: int = 5) -> dict:
  """Stratified k-fold accuracy of the baseline (features refitted per fold) over every labelled
  title, train, validation and test together: a less noisy estimate of what the titles' n-grams
  reach than the 500-title test split alone (one binomial standard error there is ~0.022)."""
  from sklearn.linear_model import LogisticRegression  # pylint: disable=import-outside-toplevel
  from sklearn.model_selection import StratifiedKFold, cross_val_score  # pylint: disable=import-outside-toplevel
  from sklearn.pipeline import make_pipeline, make_union  # pylint: disable=import-outside-toplevel
  titles = [t for split in ("train", "validation", "test") for t in splits[split][0]]
  labels = np.concatenate([splits[split][1] for split in ("train", "validation", "test")])
  model = make_pipeline(make_union(*_vectorizers()), LogisticRegression(C=c, max_iter=3000))
  accuracy = cross_val_score(model, titles, labels, cv=StratifiedKFold(
      folds, shuffle=True, random_state=0))
  return {"folds": folds, "mean": round(float(accuracy.mean()), 4),
          "per_fold": [round(float(a), 4) for a in accuracy], "examples": len(labels)}


def _vectorizers():
  from sklearn.feature_extraction.text import TfidfVectorizer  # pylint: disable=import-outside-toplevel
  return [TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
          TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)]


def cached_baseline(args) -> dict:
  """The baseline row from RESULTS/baseline.json when it was computed for the same data file,
  buckets, C grid and scikit-learn version; else computed (a few minutes) and stored there."""
  import sklearn  # pylint: disable=import-outside-toplevel
  from data import prepare as prep  # pylint: disable=import-outside-toplevel
  key = {"source": prep.source_key("tsv", args.data_dir, "en", "de",
                                   reader_options(args.text_columns)), "buckets": args.buckets,
         "c_grid": list(C_GRID), "sklearn": sklearn.__version__, "with": "svm,nb,cv5"}
  path = os.path.join(args.results, "baseline.json")
  if os.path.isfile(path):
    with open(path, encoding="utf-8") as f:
      stored = json.load(f)
    if stored.get("key") == key:
      return stored["baseline"]
  baseline = ngram_baseline(listings(args.data_dir, args.buckets, args.data_cache_dir,
                                     args.text_columns))
  result_files.write_json(path, {"key": key, "baseline": baseline})
  return baseline


def _slug(name: str) -> str:
  return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def result_path(args, row: str, seed: int) -> str:
  return os.path.join(args.results, _slug(row), f"seed{seed}.json")


def _price(metrics: dict) -> dict:
  price = metrics.get("price", {})
  return {"accuracy": price.get("accuracy"), "macro_f1": price.get("macro_f1"),
          "bleu": metrics.get("bleu")}


def best_validation(records: List[dict], metric: str = "accuracy") -> dict:
  """The validation record with the best price `metric` (the first of equals: the checkpoint
  that `--select_metric=price/accuracy` keeps), with its step."""
  validations = [r for r in records if r.get("kind") == "validation"]
  if not validations:
    return {}
  best = max(validations, key=lambda r: (r.get("price", {}).get(metric, -1.0),
                                         -validations.index(r)))
  return dict(_price(best), step=best.get("step"))


def run_one(args, row: str, seed: int) -> dict:
  """Trains one (row, seed) with main.py, scores it, writes its result file; returns it."""
  workdir = os.path.join(args.out, _slug(row), f"seed{seed}")
  command = [sys.executable, os.path.join(ROOT, "main.py"), f"--workdir={workdir}",
             f"--seed={seed}", "--overwrite", *ROWS[row],
             *([f"--tsv_text_columns={args.text_columns}"] if args.text_columns != "name" else [])]
  start = time.time()
  proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
  if proc.returncode != 0:
    raise RuntimeError(f"{row} seed {seed} failed: {proc.stderr.strip().splitlines()[-1:]}")
  final = json.loads(proc.stdout.strip().splitlines()[-1])
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    records = [json.loads(line) for line in f if line.strip()]
  commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, cwd=ROOT, check=False).stdout.strip()
  result = {"row": row, "seed": seed, "commit": commit, "test": _price(final),
            "validation": best_validation(records), "wall_s": round(time.time() - start, 1),
            "precision": result_files.run_precision(workdir),
            "command": " ".join(["main.py"] + command[2:])}
  path = result_path(args, row, seed)
  result_files.write_json(path, result)  # marks the run done: written last
  return result


def load_results(args) -> Dict[str, List[dict]]:
  return result_files.load_results(ROWS, args.seeds, lambda row, seed: result_path(args, row, seed))


def report(args, baseline: dict, results: Dict[str, List[dict]]) -> dict:
  """Markdown table (baseline row first) and the summary object."""
  table = {}
  print("| row | seeds | validation acc. | test acc. | test macro-F1 |")
  print("|---|---|---|---|---|")
  print(f"| n-gram TF-IDF + logistic regression (C={baseline['C']:g}, chosen on validation) | "
        f"– | {baseline['validation']['accuracy']:.3f} | {baseline['test']['accuracy']:.3f} | "
        f"{baseline['test']['macro_f1']:.3f} |")
  for row, runs in results.items():
    cis = {f"{split}_{key}": stats.mean_ci([r[split].get(key) for r in runs])
           for split in ("validation", "test") for key in ("accuracy", "macro_f1")}
    table[row] = cis
    print(f"| {row} | {len(runs)} | {stats.format_ci(cis['validation_accuracy'], 3)} | "
          f"{stats.format_ci(cis['test_accuracy'], 3)} | "
          f"{stats.format_ci(cis['test_macro_f1'], 3)} |")
  for name, label in (("linear_svm", "linear SVM, C"), ("complement_nb", "complement NB, alpha")):
    if name in baseline:
      other = baseline[name]
      print(f"| same features, {label}={other['param']:g} (on validation) | – | "
            f"{other['validation']:.3f} | {other['test']:.3f} | |")
  print(f"majority class (test): {baseline['test']['majority_baseline']:.3f}")
  if "cv" in baseline:
    cv = baseline["cv"]
    print(f"logistic regression, {cv['folds']}-fold accuracy over all {cv['examples']} titles: "
          f"{cv['mean']:.3f} (folds {', '.join(f'{a:.3f}' for a in cv['per_fold'])})")
  summary = {"baseline": baseline, "rows": {
      row: {k: {f: None if isinstance(v, float) and math.isnan(v) else v for f, v in ci.items()}
            for k, ci in cis.items()} for row, cis in table.items()}}  # strict JSON: no NaN
  print(json.dumps(summary, allow_nan=False))
  return summary


def main(argv=None):
  args = parse_args(argv)
  # --report: only aggregate what is there
  seeds = [] if args.report else range(args.from_seed, args.seeds + 1)
  code = result_files.run_rows(args.only, ROWS, seeds,
                               lambda row, seed: result_path(args, row, seed),
                               lambda row, seed: run_one(args, row, seed),
                               lambda r: f"test {json.dumps(r['test'])}, best validation "
                                         f"{json.dumps(r['validation'])} ({r['wall_s']:.0f} s)")
  if code:
    return code
  report(args, cached_baseline(args), load_results(args))
  return 0


if __name__ == "__main__":
  sys.exit(main())
