"""Where a train step's time goes: a tf.profiler trace of auxseq's step, grouped by what the ops do.

  python bench/profile_step.py                       # Multi30k preset shapes, mixed_bfloat16
  python bench/profile_step.py --precision=float32 --steps=10
  python bench/profile_step.py --quick               # tiny model, seconds (the test)
  python bench/profile_step.py --heads="price;attention_entropy" --combiner=metabalance

Builds the same trainer as bench/throughput.py (auxseq's components, train step and bucketed
stream: Transformer d_model 256, 3+3 layers, FFN 1024, ~2048 target tokens per batch on
Multi30k), runs `--warmup_steps`, then traces `--steps` steps with `tf.profiler` and reads the
trace's per-op self times (TensorFlow's own `framework_op_stats` tool). Ops are grouped by their
name scope and type (`category`); the table gives each group's share of the busy CPU time (idle
thread time left out; the input pipeline's threads are included: on 2 cores they compete with
the step). The last stdout line is one JSON object.
"""
import argparse
import collections
import glob
import json
import os
import re
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from training import process_env  # noqa: E402  (before TensorFlow: as main.py trains)

process_env.apply()

DEFAULT_DATA_DIR = os.path.join(os.path.dirname(ROOT), "shared", "data", "multi30k")
MODELS = {"full": dict(d_model=256, num_layers=3, num_heads=4, ffn_dim=1024),
          "quick": dict(d_model=32, num_layers=1, num_heads=2, ffn_dim=64)}
MATMULS = ("_MklMatMul", "MatMul", "_MklBatchMatMulV2", "BatchMatMulV2", "_MklEinsum", "Einsum",
           "_MklFusedMatMul")
# (category, test on (scope, op type)); the first that matches wins.
CATEGORIES = (
    ("input pipeline (tf.data threads)",
     lambda n, t: t == "Dataset" or n.startswith("Iterator::") or "Sentencepiece" in t),
    ("dropout (random bits, masks)", lambda n, t: "dropout" in n or "Random" in t),
    ("loss (softmax cross-entropy over the vocabulary)",
     lambda n, t: "cross_entropy" in n or t in ("LogSoftmax", "UnsortedSegmentSum") and
     "embedding" not in n),
    ("output projection (tied embedding, logits)",
     lambda n, t: re.search(r"seq2seq[_0-9]*/(einsum|Cast_)", n) is not None),
    ("feed-forward matmuls", lambda n, t: "ffn" in n and t in MATMULS),
    ("attention projections (q, k, v, o)",
     lambda n, t: re.search(r"/(query|key|value|output)[_0-9]*/", n) is not None and
     t in MATMULS),
    ("attention scores, softmax, weighted sum",
     lambda n, t: "attention" in n or re.search(r"/einsum(_\d+)?/", n) is not None),
    ("layer norm", lambda n, t: "norm" in n),
    ("embedding look-up and its gradient", lambda n, t: "embedding" in n),
    ("optimizer update",
     lambda n, t: "adam" in n.lower() or t.startswith("ResourceApply") or "Assign" in t),
    ("other matmuls", lambda n, t: t in MATMULS),
)


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--precision", default="mixed_bfloat16", choices=("float32", "mixed_bfloat16"))
  p.add_argument("--steps", type=int, default=10, help="traced steps")
  p.add_argument("--warmup_steps", type=int, default=15, help="untimed steps first (tracing)")
  p.add_argument("--batch_tokens", type=int, default=None)
  p.add_argument("--data_dir", default=DEFAULT_DATA_DIR)
  p.add_argument("--workdir", default="", help="cache for tokenizer/data (default: temp dir)")
  p.add_argument("--quick", action="store_true", help="tiny model, few steps (tests)")
  p.add_argument("--heads", default="", help="`--heads` beside translation (e.g. the heads "
                 "preset's 'price;attention_entropy'); price mixes the listings in")
  p.add_argument("--combiner", default="fixed")
  args = p.parse_args(argv)
  if args.batch_tokens is None:
    args.batch_tokens = 256 if args.quick else 2048
  return args


def categorize(name: str, op_type: str) -> str:
  for category, test in CATEGORIES:
    if test(name, op_type):
      return category
  return f"other ({op_type})"


def op_stats(trace_dir: str):
  """[(op name, op type, self time us)] of the newest trace under `trace_dir`, idle left out."""
  # pylint: disable-next=import-outside-toplevel
  from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin
  path = sorted(glob.glob(os.path.join(trace_dir, "plugins", "profile", "*", "*.xplane.pb")))[-1]
  data, ok = plugin.xspace_to_tools_data([path], "framework_op_stats", {})
  if not ok:
    raise RuntimeError(f"could not read the trace {path}")
  table = json.loads(data)
  table = table[0] if isinstance(table, list) else table
  columns = [c["id"] for c in table["cols"]]
  rows = [dict(zip(columns, [c.get("v") if c else None for c in r["c"]])) for r in table["rows"]]
  return [(r["operation"], r["type"], float(r["total_self_time"])) for r in rows
          if r["type"] != "IDLE"]


def group(stats, steps: int):
  """{category: ms per step}, sorted by time, and the busy total in ms per step."""
  totals = collections.Counter()
  for name, op_type, self_us in stats:
    totals[categorize(name, op_type)] += self_us / 1000.0 / steps
  return dict(totals.most_common()), sum(totals.values())


def run(argv=None) -> dict:
  args = parse_args(argv)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from bench.auxseq_runner import AuxseqSetup, AuxseqTrainer  # pylint: disable=import-outside-toplevel
  workdir = args.workdir or tempfile.mkdtemp(prefix="auxseq_profile_")
  setup = AuxseqSetup(workdir=workdir, data_dir=args.data_dir,
                      model_args=MODELS["quick" if args.quick else "full"],
                      vocab_size=300 if args.quick else 8000, batch_tokens=args.batch_tokens,
                      precision=args.precision, heads=args.heads, combiner=args.combiner,
                      mix_prices="price" in args.heads)
  trainer = AuxseqTrainer("profiled", setup)
  trainer.start()
  trainer.run(args.warmup_steps)
  timed = trainer.run(args.steps)  # untraced: the step time without the profiler's overhead
  trace_dir = os.path.join(workdir, "trace")
  tf.profiler.experimental.start(trace_dir)
  traced = trainer.run(args.steps)
  tf.profiler.experimental.stop()
  categories, busy = group(op_stats(trace_dir), args.steps)
  step_ms = 1000.0 * sum(timed["durations"]) / len(timed["durations"])
  return {"precision": args.precision, "model": setup.model_args, "heads": args.heads,
          "combiner": args.combiner,
          "batch_tokens": args.batch_tokens, "steps": args.steps,
          "step_ms": round(step_ms, 1),
          "traced_step_ms": round(1000.0 * sum(traced["durations"]) / len(traced["durations"]), 1),
          "tokens_per_s": round(timed["tokens"] / sum(timed["durations"]), 1),
          "busy_cpu_ms_per_step": round(busy, 1),
          "categories_ms_per_step": {k: round(v, 2) for k, v in categories.items()},
          "trace_dir": trace_dir}


def table(result: dict) -> str:
  busy = result["busy_cpu_ms_per_step"]
  lines = ["| what | busy CPU ms / step | share |", "|---|---|---|"]
  for category, ms in result["categories_ms_per_step"].items():
    lines.append(f"| {category} | {ms:.1f} | {100 * ms / busy:.1f}% |")
  lines.append(f"| **all busy threads** | **{busy:.1f}** | 100% |")
  return "\n".join(lines)


def main(argv=None) -> int:
  start = time.time()
  result = run(argv)
  print(table(result))
  print(f"step {result['step_ms']} ms wall ({result['tokens_per_s']} target tok/s), "
        f"{time.time() - start:.0f} s in all", file=sys.stderr)
  print(json.dumps(result))
  return 0


if __name__ == "__main__":
  sys.exit(main())
