"""Data at corpus scale (issue 19): synthetic WMT-shaped parallel corpora of several sizes, and per
size the preparation's wall time and peak RSS, time from process start to the first training
step, the input pipeline's speed against training's, and translate start-up (the default engine,
which serves the CTranslate2 export training leaves, and --engine=tensorflow). A row measured
before translate had two engines gets its translate start-up measured again on rerun.

  python bench/data_scale.py --sizes=100000,1000000 --out=/tmp/auxseq_scale
  python bench/data_scale.py --quick        # 2,000 pairs, seconds (tests)

Each finished size is stored as OUT/row_SIZE.json and skipped when the command is run again
(sizes take minutes to tens of minutes: 4.5M pairs fits one session on its own).

Corpora: sentence lengths in words drawn from a log-normal fitted to WMT14 en-de's training
side (median ~21 words, mean ~24, a long tail cut at 150), words from a Zipf(1.1) law over a
50,000-word synthetic vocabulary (syllable strings); the target is the source with each word
mapped to another synthetic word and ~10% of words dropped or doubled, so both sides differ.
Every measurement runs in a fresh process (peak RSS = that process's ru_maxrss). The last stdout
line is one JSON object; progress goes to stderr.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from bench import result_files  # noqa: E402  pylint: disable=wrong-import-position
SYLLABLES = [c + v for c in "bdfgklmnprstvwz" for v in ("a", "e", "i", "o", "u", "au", "ei")]


def _log(message: str) -> None:
  print(f"[data_scale {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _vocabulary(rng, size: int):
  words = set()
  while len(words) < size:
    n = rng.integers(1, 5)
    words.add("".join(SYLLABLES[i] for i in rng.integers(0, len(SYLLABLES), n)))
  return np.array(sorted(words), dtype=object)


def write_corpus(directory: str, pairs: int, seed: int = 0, held_out: int = 3000) -> str:
  """DIR/{train,val,test}.{en,de}: `pairs` training pairs, `held_out` validation and test."""
  rng = np.random.default_rng(seed)
  source_words, target_words = _vocabulary(rng, 50_000), _vocabulary(rng, 50_000)
  rng.shuffle(target_words)
  os.makedirs(directory, exist_ok=True)
  for split, n in (("train", pairs), ("val", held_out), ("test", held_out)):
    with open(os.path.join(directory, f"{split}.en"), "w", encoding="utf-8") as src, \
         open(os.path.join(directory, f"{split}.de"), "w", encoding="utf-8") as tgt:
      for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        lengths = np.clip(np.round(rng.lognormal(3.05, 0.55, m)), 1, 150).astype(int)
        ids = (rng.zipf(1.1, int(lengths.sum())) - 1) % len(source_words)
        keep = rng.random(len(ids))  # < 0.05 dropped, > 0.95 doubled on the target side
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        for i in range(m):
          a, b = offsets[i], offsets[i + 1]
          src.write(" ".join(source_words[ids[a:b]]) + "\n")
          target = [w for w, k in zip(target_words[ids[a:b]], keep[a:b]) if k >= 0.05
                    for _ in range(2 if k > 0.95 else 1)]
          tgt.write(" ".join(target or ["x"]) + "\n")
  return directory


_PREPARE = r"""
import json, resource, sys, time
start = time.time()
sys.path.insert(0, {root!r})
import tensorflow  # loaded before any data work, as main.py does (`import data` alone does not)
import data
from configs.config import DataConfig, DataSourceConfig
config = DataConfig(sources=(DataSourceConfig("parallel_text", {corpus!r}),),
                    data_cache_dir={cache!r}, shuffle_buffer=20000)
imported = time.time()
bundle = data.load_data(config, {workdir!r}, seed=1234)
prepared = time.time()
tokens, batches = 0, 0
it = iter(bundle.train_dataset(config.batch_tokens, 1234))
next(it)
t0 = time.time()
while time.time() - t0 < {pipeline_seconds}:
  batch = next(it)
  tokens += int((batch["target_out"].numpy() != 0).sum())
  batches += 1
print(json.dumps(dict(prepare_s=round(prepared - imported, 1), import_s=round(imported - start, 1),
                      peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      pipeline_tokens_per_s=round(tokens / (time.time() - t0)),
                      pipeline_batches=batches, stats_train=bundle.stats["train_examples"],
                      dropped=bundle.stats["dropped_over_max_length"])))
"""


def measure_prepare(corpus, cache, workdir, pipeline_seconds):
  code = _PREPARE.format(root=ROOT, corpus=corpus, cache=cache, workdir=workdir,
                         pipeline_seconds=pipeline_seconds)
  start = time.time()
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  if out.returncode:
    raise RuntimeError(out.stderr[-3000:])
  result = json.loads(out.stdout.strip().splitlines()[-1])
  result["process_s"] = round(time.time() - start, 1)
  return result


def measure_training(corpus, cache, workdir, steps: int, extra):
  """Seconds from process start to the first logged step, and training tokens/s over the second
  half of `steps` (the default model; a second workdir on the cached data)."""
  args = [sys.executable, os.path.join(ROOT, "main.py"), f"--workdir={workdir}",
          "--dataset=parallel_text", f"--data_dir={corpus}", "--mix=", f"--data_cache_dir={cache}",
          f"--train_steps={steps}", "--log_every=1", "--eval_every=0",
          f"--checkpoint_every={steps}", "--max_eval_examples=8", "--heads=", *extra]
  metrics = os.path.join(workdir, "metrics.jsonl")
  start = time.time()
  proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  first = None
  while proc.poll() is None and first is None:
    if os.path.exists(metrics) and '"kind": "train"' in open(metrics, encoding="utf-8").read():
      first = time.time() - start
    time.sleep(0.05)
  _, err = proc.communicate()
  if proc.returncode:
    raise RuntimeError(err[-3000:])
  records = [json.loads(line) for line in open(metrics, encoding="utf-8")]
  train = [r for r in records if r.get("kind") == "train"]
  half = [r for r in train if r["step"] > steps // 2]
  base = [r for r in train if r["step"] == steps // 2][0]
  tokens = sum(r["count/translation"] for r in half)
  seconds = half[-1]["wall_seconds"] - base["wall_seconds"]
  return {"first_step_s": round(first or float("nan"), 1),
          "train_tokens_per_s": round(tokens / max(seconds, 1e-9))}


def _translate_once(workdir, extra):
  start = time.time()
  out = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable,
                        os.path.join(ROOT, "main.py"), "--mode=translate",
                        f"--workdir={workdir}", *extra], input="Hello\n", capture_output=True,
                       text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  if out.returncode:
    raise RuntimeError(out.stderr[-3000:])
  return time.time() - start, int(out.stderr.strip().splitlines()[-1]) / 1024


def measure_translate(workdir, extra, repeats: int = 2):
  """Wall seconds and peak RSS of `echo Hello | main.py --mode=translate` (best of `repeats`):
  the default engine (auto: the CTranslate2 export training left, without TensorFlow) and
  --engine=tensorflow, beside a bare `import tensorflow` in the same minutes (its floor)."""
  if not os.path.exists(os.path.join(workdir, "ctranslate2")):  # trained before the export
    subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), "--mode=export",
                    "--export_format=ctranslate2", f"--workdir={workdir}", *extra], check=True,
                   capture_output=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  auto, tf_engine, imports = [], [], []
  for _ in range(repeats):
    auto.append(_translate_once(workdir, extra))
    tf_engine.append(_translate_once(workdir, [*extra, "--engine=tensorflow"]))
    start = time.time()
    subprocess.run([sys.executable, "-c", "import tensorflow"], check=True, capture_output=True)
    imports.append(time.time() - start)
  return {"translate_s": round(min(w for w, _ in auto), 1),
          "translate_rss_mb": round(min(r for _, r in auto)),
          "translate_tensorflow_s": round(min(w for w, _ in tf_engine), 1),
          "translate_tensorflow_rss_mb": round(min(r for _, r in tf_engine)),
          "import_tensorflow_s": round(min(imports), 1)}


def _row_path(out: str, size: int) -> str:
  return os.path.join(out, f"row_{size}.json")


def finished_row(out: str, size: int):
  """The stored measurements of `size` pairs under `out`, or None when not measured yet."""
  if not os.path.exists(_row_path(out, size)):
    return None
  with open(_row_path(out, size), encoding="utf-8") as f:
    return json.load(f)


def save_row(out: str, size: int, row: dict) -> None:
  """Written atomically, so a run stopped mid-size leaves no row and measures it again."""
  result_files.write_json(_row_path(out, size), row)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--sizes", default="100000,1000000,4500000")
  parser.add_argument("--out", default="", help="corpora, cache and workdirs ('' = a temp dir)")
  parser.add_argument("--train_steps", type=int, default=20)
  parser.add_argument("--pipeline_seconds", type=float, default=20.0)
  parser.add_argument("--quick", action="store_true", help="2,000 pairs, the tiny model")
  args = parser.parse_args()
  out = args.out or tempfile.mkdtemp(prefix="auxseq_scale_")
  sizes = [2000] if args.quick else [int(s) for s in args.sizes.split(",")]
  extra = ["--preset=tiny", "--vocab_size=300"] if args.quick else []
  results = {}
  for size in sizes:
    done = finished_row(out, size)
    train_dir = os.path.join(out, f"train_{size}")
    if done is not None and "translate_tensorflow_s" not in done and os.path.isdir(train_dir):
      done.update(measure_translate(train_dir, extra))  # a row of the TensorFlow-only days
      save_row(out, size, done)
      _log(f"{size}: translate start-up measured again: {done['translate_s']} s")
    if done is not None:
      results[str(size)] = done
      _log(f"{size}: measured before ({_row_path(out, size)}), skipped")
      continue
    corpus = os.path.join(out, f"corpus_{size}")
    if not os.path.exists(os.path.join(corpus, "test.de")):
      start = time.time()
      write_corpus(corpus, size)
      _log(f"{size} pairs written in {time.time() - start:.0f} s")
    cache = os.path.join(out, f"cache_{size}")
    row = {"pairs": size}
    row.update(measure_prepare(corpus, cache, os.path.join(out, f"prep_{size}"),
                               2.0 if args.quick else args.pipeline_seconds))
    _log(f"{size}: prepared {row}")
    row.update(measure_training(corpus, cache, train_dir, 4 if args.quick else args.train_steps,
                                extra))
    row.update(measure_translate(train_dir, extra))
    row["pipeline_over_training"] = round(row["pipeline_tokens_per_s"] /
                                          max(row["train_tokens_per_s"], 1), 1)
    _log(f"{size}: {row}")
    results[str(size)] = row
    save_row(out, size, row)
  print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
  main()
