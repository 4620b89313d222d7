"""Translation speed, memory and BLEU: TensorFlow beam search vs CTranslate2 float32 vs int8.

  python bench/inference_speed.py --threads=2 --out=runs/inference_speed.json \
      -- --preset=multi30k_transformer --data_dir=../shared/data/multi30k --workdir=runs/m30k

Everything after `--` is main.py's flags for the trained run (preset, data, workdir, and e.g.
--average_last, --beam_size, --length_penalty). In one run: the weights are exported once per
CTranslate2 quantization (into WORKDIR/bench_ctranslate2_<q>, not timed), then each engine
translates the same raw lines (--source_file, default DATA_DIR/test2016.<source_lang>) in its
own fresh process, so that each process's peak RSS is that engine's: TensorFlow (today's
`--mode=evaluate --input_file` path, in the run's --precision; `tensorflow_float32`: the same in
float32, the arithmetic CTranslate2 float32 uses) and CTranslate2 (sentencepiece + ctranslate2
only; TensorFlow is never imported). Both sort the sentences by length and decode
--eval_batch_size sentences per batch; a warm-up batch (not timed) comes first. Reported per
engine and setting: sentences/s over the timed translation, BLEU/chrF against --reference_file,
and the process's peak RSS (ru_maxrss: includes the model, the libraries and, for TensorFlow,
the vocabulary/data facts loaded to build the model). --settings=BEAM:ALPHA,... also measures
other beam/length-penalty pairs (CTranslate2 normalises by |Y|^alpha, our beam search by the GNMT
penalty: docs/serving.md).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

ENGINES = ("tensorflow", "tensorflow_float32", "ctranslate2_float32", "ctranslate2_int8")
WARMUP_LINES = 16


def _peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def _read(path):
  with open(path, encoding="utf-8") as f:
    return [line.rstrip("\n") for line in f]


def _config(main_flags, threads):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  tf.config.threading.set_intra_op_parallelism_threads(threads)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  import flags as app_flags  # pylint: disable=import-outside-toplevel
  return app_flags.config_from_argv(["main.py"] + main_flags)


def child_export(args) -> dict:
  """Exports the run's inference weights once per quantization (not timed)."""
  import dataclasses  # pylint: disable=import-outside-toplevel
  from evaluation.ctranslate2_export import export_ctranslate2
  from training.modes import components_for_inference
  config = _config(args.main_flags, args.threads)
  c = components_for_inference(config)
  paths = {}
  for quantization in ("float32", "int8"):
    c.config = dataclasses.replace(config, eval=dataclasses.replace(config.eval,
                                                                    quantization=quantization))
    paths[quantization] = export_ctranslate2(
        c, os.path.join(config.workdir, f"bench_ctranslate2_{quantization}"),
        checkpoint=f"step {int(c.step.numpy())}")
  return paths


def child_tensorflow(args, lines, settings):
  import dataclasses  # pylint: disable=import-outside-toplevel
  from evaluation import evaluate as ev
  from training.modes import components_for_inference
  config = _config(args.main_flags, args.threads)
  c = components_for_inference(config)
  results = []
  for beam, alpha in settings:
    cfg = dataclasses.replace(config.eval, beam_size=beam, length_penalty=alpha)
    decode_fn = ev.make_decoder(c.model, cfg)
    size = cfg.eval_batch_size
    ev.translate_batches(decode_fn, c.bundle.text_dataset(lines[:WARMUP_LINES], size),
                         c.bundle.target_tokenizer, size)
    start = time.perf_counter()
    hyps = ev.translate_batches(decode_fn, c.bundle.text_dataset(lines, size),
                                c.bundle.target_tokenizer, size)
    results.append((beam, alpha, time.perf_counter() - start, hyps))
  return results, {"precision": c.config.train.precision}  # resolved (auto -> this host's)


def child_ctranslate2(args, lines, settings, directory):
  from evaluation.ctranslate2_engine import Engine
  engine = Engine(directory, threads=args.threads)
  results = []
  for beam, alpha in settings:
    engine.translate(engine.encode(lines[:WARMUP_LINES]), beam, alpha, args.max_decode_length,
                     args.batch_size)
    start = time.perf_counter()
    hyps = engine.translate(engine.encode(lines), beam, alpha, args.max_decode_length,
                            args.batch_size)
    results.append((beam, alpha, time.perf_counter() - start, hyps))
  assert "tensorflow" not in sys.modules  # the RSS is CTranslate2's alone
  return results, {"quantization": engine.manifest["quantization"]}


def run_child(args) -> None:
  """One engine in this process; prints one JSON line (hypotheses included)."""
  if args.child == "export":
    print(json.dumps({"exports": child_export(args)}))
    return
  lines = _read(args.source_file)
  settings = [tuple(json.loads(s)) for s in args.child_settings]
  if args.child == "tensorflow":
    results, facts = child_tensorflow(args, lines, settings)
  else:
    results, facts = child_ctranslate2(args, lines, settings, args.child_dir)
  rows = [dict(facts, beam_size=b, length_penalty=a, seconds=round(s, 3),
               sentences_per_second=round(len(lines) / s, 2), hypotheses=h)
          for b, a, s, h in results]
  print(json.dumps({"rows": rows, "peak_rss_mb": round(_peak_rss_mb(), 1)}))


def _spawn(args, *extra, main_flags=()) -> dict:
  cmd = [sys.executable, os.path.abspath(__file__), f"--threads={args.threads}",
         f"--source_file={args.source_file}", f"--batch_size={args.batch_size}",
         f"--max_decode_length={args.max_decode_length}", *extra, "--", *args.main_flags,
         *main_flags]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", OMP_NUM_THREADS=str(args.threads))
  done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
  if done.returncode != 0:
    sys.stderr.write(done.stderr[-4000:])
    raise SystemExit(f"child {extra} failed with status {done.returncode}")
  return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--threads", type=int, default=2)
  parser.add_argument("--source_file", default="")
  parser.add_argument("--reference_file", default="")
  parser.add_argument("--settings", default="", help="BEAM:ALPHA,... (default: the run's)")
  parser.add_argument("--engines", default=",".join(ENGINES))
  parser.add_argument("--out", default="")
  parser.add_argument("--batch_size", type=int, default=0)
  parser.add_argument("--max_decode_length", type=int, default=0)
  parser.add_argument("--child", default="", help=argparse.SUPPRESS)
  parser.add_argument("--child_dir", default="", help=argparse.SUPPRESS)
  parser.add_argument("--child_settings", action="append", default=[], help=argparse.SUPPRESS)
  argv = sys.argv[1:]
  split = argv.index("--") if "--" in argv else len(argv)
  args = parser.parse_args(argv[:split])
  args.main_flags = argv[split + 1:]
  if args.child:
    return run_child(args)
  orchestrate(args)


def orchestrate(args) -> None:
  from evaluation.scorers import score_corpus
  import flags as app_flags  # pylint: disable=import-outside-toplevel
  config = app_flags.config_from_argv(["main.py"] + args.main_flags)
  data_dir = config.data.sources[0].data_dir
  args.source_file = args.source_file or os.path.join(
      data_dir, f"test2016.{config.data.source_lang}")
  args.reference_file = args.reference_file or os.path.join(
      data_dir, f"test2016.{config.data.target_lang}")
  args.batch_size = args.batch_size or config.eval.eval_batch_size
  args.max_decode_length = args.max_decode_length or config.eval.max_decode_length
  settings = ([(int(b), float(a)) for b, a in (s.split(":") for s in args.settings.split(","))]
              if args.settings else [(config.eval.beam_size, config.eval.length_penalty)])
  unknown = sorted(set(args.engines.split(",")) - set(ENGINES))
  if unknown:
    raise SystemExit(f"error: --engines: unknown {', '.join(unknown)}; accepted: "
                     f"{', '.join(ENGINES)}")
  references = _read(args.reference_file)
  exports = _spawn(args, "--child=export")["exports"]
  summary = {"command": " ".join([sys.executable] + sys.argv), "threads": args.threads,
             "sentences": len(references), "source_file": args.source_file, "engines": {},
             "load_average_before": [round(x, 2) for x in os.getloadavg()],
             "cpus": os.cpu_count()}
  for engine in args.engines.split(","):
    tensorflow = engine.startswith("tensorflow")
    extra = [f"--child={'tensorflow' if tensorflow else 'ctranslate2'}"]
    if not tensorflow:
      extra.append(f"--child_dir={exports[engine.split('_', 1)[1]]}")
    extra += [f"--child_settings={json.dumps(list(s))}" for s in settings]
    out = _spawn(args, *extra,
                 main_flags=["--precision=float32"] if engine == "tensorflow_float32" else [])
    for row in out["rows"]:
      hyps = row.pop("hypotheses")
      row.update({k: v for k, v in score_corpus(hyps, references).items()
                  if k in ("bleu", "chrf")}, peak_rss_mb=out["peak_rss_mb"])
      row["identical_lines"] = hyps  # dropped by _compare
      summary["engines"].setdefault(engine, []).append(row)
  _compare(summary)
  summary["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
  text = json.dumps(summary, indent=2, sort_keys=True)
  print(text)
  if args.out:
    with open(args.out, "w", encoding="utf-8") as f:
      f.write(text + "\n")


def _compare(summary) -> None:
  """Each non-reference row gets its speed-up over TensorFlow (the run's precision), and its
  BLEU difference and count of lines translated exactly as each TensorFlow row (the run's
  precision; float32) at the same setting; the hypotheses are dropped."""
  for reference_engine in ("tensorflow", "tensorflow_float32"):
    reference = {(r["beam_size"], r["length_penalty"]): r
                 for r in summary["engines"].get(reference_engine, [])}
    for engine, rows in summary["engines"].items():
      for row in rows:
        tf_row = reference.get((row["beam_size"], row["length_penalty"]))
        if engine == reference_engine or tf_row is None:
          continue
        if reference_engine == "tensorflow":
          row["speedup_vs_tensorflow"] = round(
              row["sentences_per_second"] / tf_row["sentences_per_second"], 2)
        row[f"bleu_minus_{reference_engine}"] = round(row["bleu"] - tf_row["bleu"], 2)
        row[f"same_lines_as_{reference_engine}"] = sum(
            a == b for a, b in zip(row["identical_lines"], tf_row["identical_lines"]))
  for rows in summary["engines"].values():
    for row in rows:
      row.pop("identical_lines")


if __name__ == "__main__":
  main()
