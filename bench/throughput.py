"""Training throughput of auxseq against a plain-Keras reference, measured in the same run.

  python bench/throughput.py                 # the full measurement (docs/results.md)
  python bench/throughput.py --quick         # tiny sizes, seconds (tests)
  python bench/throughput.py --only=reference,matmul

Trainers (all built first, then timed round-robin in `--rounds` rounds so that load changes on
a shared machine hit every trainer alike):
  reference     bench/keras_reference.py: `model.fit`, float32, fixed batch size, padded batches
  reference_bf16  the same under the mixed_bfloat16 policy (float32 logits): auxseq_bf16's match
  auxseq_fp32   auxseq, float32, length-bucketed batches of ~batch_tokens, translation only
  auxseq_bf16   the same in mixed_bfloat16
  auxseq_fp32_geometric  auxseq_fp32 with the coarse length buckets of before 2026-12-06
                (`--length_buckets=geometric`; on request, alias `buckets`)
  heads_base    translation only, on the stream that mixes in priced listings (tsv, 0.2)
  heads_all     the same + price + attention_entropy(per_head, all layers) + coverage
Plus: `pipeline` (auxseq's training stream alone) and `matmul` (the GFLOP/s ceiling).
Tokens are non-pad target tokens; FLOPs are counted analytically (bench/flops.py). The last
stdout line is one JSON object; progress goes to stderr.
"""
import argparse
import dataclasses
import json
import math
import os
import resource
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from training import process_env  # noqa: E402  (before TensorFlow: as main.py trains)

process_env.apply()

import numpy as np  # noqa: E402

from bench import auxseq_runner, flops as flops_lib, lengths as lengths_lib  # noqa: E402

DEFAULT_DATA_DIR = os.path.join(os.path.dirname(ROOT), "shared", "data", "multi30k")
PARTS = ("reference", "reference_bf16", "auxseq_fp32", "auxseq_bf16", "heads_base", "heads_all",
         "pipeline", "matmul")
REFERENCES = {"reference": "float32", "reference_bf16": "mixed_bfloat16"}
# XLA-compiled train steps (`--jit_compile`): measured on request, not part of `all`.
JIT_PARTS = ("auxseq_fp32_jit", "auxseq_bf16_jit")
# The length buckets of before 2026-12-06 (`--length_buckets=geometric`), on request.
BUCKET_PARTS = ("auxseq_fp32_geometric",)
KNOWN_PARTS = PARTS + JIT_PARTS + BUCKET_PARTS
ALIASES = {"auxseq": ("auxseq_fp32", "auxseq_bf16"), "heads": ("heads_base", "heads_all"),
           "jit": ("auxseq_fp32", "auxseq_bf16") + JIT_PARTS,
           "buckets": ("auxseq_fp32",) + BUCKET_PARTS, "all": PARTS}
FULL = dict(model=dict(d_model=256, num_layers=3, num_heads=4, ffn_dim=1024), vocab_size=8000,
            matmul_square=1024, matmul_seconds=1.0, shuffle_buffer=20000, pipeline_batches=200)
FLOPS_NOTE = ("useful training FLOPs = 3 x forward; forward per pair (s src, t tgt tokens, d, f, "
              "L layers/side, V vocab) = L(8d^2 s + 4s^2 d + 4dfs) + L(12d^2 t + 4d^2 s + 4t^2 d "
              "+ 4tsd + 4dft) + 2dVt; see bench/flops.py")
QUICK = dict(model=dict(d_model=32, num_layers=1, num_heads=2, ffn_dim=64), vocab_size=300,
             matmul_square=128, matmul_seconds=0.05, shuffle_buffer=500, pipeline_batches=10)


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--steps", type=int, default=None, help="timed steps per trainer (all rounds)")
  p.add_argument("--warmup_steps", type=int, default=None, help="untimed steps first (tracing)")
  p.add_argument("--rounds", type=int, default=None, help="round-robin rounds over the trainers")
  p.add_argument("--only", default="all", help=f"comma list of {', '.join(KNOWN_PARTS)} "
                 f"(aliases: {', '.join(ALIASES)})")
  p.add_argument("--quick", action="store_true", help="tiny model and few steps (tests)")
  p.add_argument("--data_dir", default=DEFAULT_DATA_DIR, help="Multi30k (train.en, train.de)")
  p.add_argument("--workdir", default="", help="cache for tokenizers/data (default: a temp dir)")
  p.add_argument("--batch_tokens", type=int, default=None, help="target tokens per batch")
  p.add_argument("--lengths", choices=("spm", "words"), default=None,
                 help="token counts: trained sentencepiece (default) or words x 1.3")
  p.add_argument("--heads_precision", default="float32", help="precision of heads_base/all")
  p.add_argument("--seed", type=int, default=0)
  args = p.parse_args(argv)
  defaults = (dict(steps=4, warmup_steps=2, rounds=2, batch_tokens=256, lengths="words")
              if args.quick else dict(steps=60, warmup_steps=15, rounds=3, batch_tokens=2048,
                                      lengths="spm"))
  for key, value in defaults.items():
    if getattr(args, key) is None:
      setattr(args, key, value)
  args.parts = expand_parts(args.only, p)
  return args


def expand_parts(only: str, parser=None):
  parts = []
  for name in filter(None, (s.strip() for s in only.split(","))):
    if name not in KNOWN_PARTS and name not in ALIASES:
      message = f"--only: unknown part {name!r}; known: {', '.join(KNOWN_PARTS + tuple(ALIASES))}"
      if parser is not None:
        parser.error(message)
      raise ValueError(message)
    parts.extend(ALIASES.get(name, (name,)))
  return tuple(p for p in KNOWN_PARTS if p in parts)


def log(message: str) -> None:
  print(f"[throughput] {message}", file=sys.stderr, flush=True)


def minor_faults() -> int:
  """Minor page faults of this process so far: each is the kernel handing a fresh page to the
  allocator (e.g. after a large buffer was returned to the system and is asked for again)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def peak_rss_mb() -> float:
  """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_lengths(args, workdir, sizes):
  """(Lengths, data_dir for auxseq, note): Multi30k if present, else fallback + synthetic text."""
  if os.path.isfile(os.path.join(args.data_dir, "train.en")):
    lengths = lengths_lib.multi30k_lengths(args.data_dir, os.path.join(workdir, "lengths"),
                                           args.lengths, sizes["vocab_size"])
    return lengths, args.data_dir, f"Multi30k train en->de at {args.data_dir}"
  lengths = lengths_lib.fallback_lengths(600 if args.quick else 29000)
  synthetic = lengths_lib.write_synthetic_corpus(os.path.join(workdir, "synthetic"), lengths)
  note = (f"{args.data_dir} is absent: FALLBACK log-normal length distribution (bench/lengths.py)"
          f"; auxseq trains on synthetic random-word text in {synthetic}")
  return lengths, synthetic, note


def make_setups(args, workdir, data_dir, sizes):
  base = auxseq_runner.AuxseqSetup(
      workdir=os.path.join(workdir, "parallel"), data_dir=data_dir, model_args=sizes["model"],
      vocab_size=sizes["vocab_size"], batch_tokens=args.batch_tokens,
      shuffle_buffer=sizes["shuffle_buffer"], seed=1234 + args.seed)
  mixed = dict(workdir=os.path.join(workdir, "mixed"), mix_prices=True,
               precision=args.heads_precision)
  bf16 = dataclasses.replace(base, precision="mixed_bfloat16")
  return {"auxseq_fp32": base, "auxseq_bf16": bf16,
          "auxseq_fp32_jit": dataclasses.replace(base, jit_compile=True),
          "auxseq_bf16_jit": dataclasses.replace(bf16, jit_compile=True),
          "auxseq_fp32_geometric": dataclasses.replace(base, length_buckets="geometric"),
          "heads_base": dataclasses.replace(base, **mixed),
          "heads_all": dataclasses.replace(base, heads=auxseq_runner.HEADS_SPEC,
                                                         **mixed)}


def build_reference(args, lengths, sizes, result, precision="float32"):
  from bench import keras_reference  # pylint: disable=import-outside-toplevel
  batch_size, padded = lengths_lib.fixed_batch_size(lengths, args.batch_tokens, args.seed)
  result.update(reference_batch_size=batch_size, reference_mean_padded_target=padded)
  model_args = dict(sizes["model"], vocab_size=sizes["vocab_size"])
  trainer = keras_reference.ReferenceTrainer(lengths, batch_size, model_args, seed=args.seed,
                                             learning_rate=3e-3 if args.quick else 1e-3,
                                             precision=precision)
  result["reference_jit_compile"] = bool(trainer.model.jit_compile)
  return trainer


def time_round_robin(trainers, args):
  """Warm-up, then `rounds` rounds in which each trainer runs steps / rounds steps in turn."""
  for name, trainer in trainers.items():
    start = time.perf_counter()
    trainer.run(args.warmup_steps)
    log(f"warm-up {name}: {args.warmup_steps} steps in {time.perf_counter() - start:.1f}s")
  per_round = max(1, math.ceil(args.steps / args.rounds))
  blocks = {name: [] for name in trainers}
  for r in range(args.rounds):
    for name, trainer in trainers.items():
      faults = minor_faults()
      blocks[name].append(trainer.run(per_round))
      block = blocks[name][-1]
      block["minflt"] = minor_faults() - faults
      log(f"round {r + 1}/{args.rounds} {name}: "
          f"{block['tokens'] / sum(block['durations']):.0f} tok/s")
  return blocks


def summarize(name, blocks, ceilings, precision):
  """Per-trainer numbers: tok/s, step times, GFLOP/s and its fraction of the ceilings."""
  durations = np.concatenate([b["durations"] for b in blocks])
  seconds = float(durations.sum())
  tokens = sum(b["tokens"] for b in blocks)
  gflops = sum(b["flops"] for b in blocks) / seconds / 1e9
  kind = "bf16" if "bfloat16" in precision else "fp32"
  out = {f"{name}_tok_s": tokens / seconds, f"{name}_step_ms": 1000 * seconds / len(durations),
         f"{name}_step_ms_median": 1000 * float(np.median(durations)),
         f"{name}_steps": int(len(durations)), f"{name}_gflops": gflops,
         f"{name}_padding_efficiency": tokens / sum(b["padded_tokens"] for b in blocks),
         f"{name}_tok_s_rounds": [b["tokens"] / sum(b["durations"]) for b in blocks],
         f"{name}_retraced_steps_left_out": sum(b.get("retraced", 0) for b in blocks),
         f"{name}_minflt_per_step": sum(b.get("minflt", 0) for b in blocks) / len(durations)}
  if f"matmul_gflops_{kind}" in ceilings:
    out[f"{name}_ceiling_fraction"] = gflops / ceilings[f"matmul_gflops_{kind}"]
  if f"matmul_gflops_model_{kind}" in ceilings:
    out[f"{name}_model_shape_ceiling_fraction"] = gflops / ceilings[f"matmul_gflops_model_{kind}"]
  return out


def derived(result, blocks):
  """Ratios: best auxseq / reference, head overhead, pipeline / training."""
  best = max((result.get(k, 0.0) for k in ("auxseq_fp32_tok_s", "auxseq_bf16_tok_s")),
             default=0.0)
  if best and "reference_tok_s" in result:
    result["ratio"] = best / result["reference_tok_s"]  # the old headline: best vs float32
  for kind, reference in (("fp32", "reference"), ("bf16", "reference_bf16")):
    if f"auxseq_{kind}_tok_s" in result and f"{reference}_tok_s" in result:  # same precision
      result[f"ratio_{kind}"] = result[f"auxseq_{kind}_tok_s"] / result[f"{reference}_tok_s"]
  for kind in ("fp32", "bf16"):
    if f"auxseq_{kind}_jit_tok_s" in result and f"auxseq_{kind}_tok_s" in result:
      result[f"jit_speedup_{kind}"] = (result[f"auxseq_{kind}_jit_tok_s"]
                                       / result[f"auxseq_{kind}_tok_s"])
  if "auxseq_fp32_geometric_tok_s" in result and "auxseq_fp32_tok_s" in result:
    result["exact_over_geometric_fp32"] = (result["auxseq_fp32_tok_s"]
                                           / result["auxseq_fp32_geometric_tok_s"])
    result["exact_over_geometric_fp32_rounds"] = [
        a / b for a, b in zip(result["auxseq_fp32_tok_s_rounds"],
                              result["auxseq_fp32_geometric_tok_s_rounds"])]
  if "heads_base" in blocks and "heads_all" in blocks:
    result["head_overhead_ratio"] = result["heads_all_step_ms"] / result["heads_base_step_ms"]
    result["head_overhead_ratio_rounds"] = [
        sum(a["durations"]) / sum(b["durations"])
        for a, b in zip(blocks["heads_all"], blocks["heads_base"])]
    result["heads_same_batches"] = ([b["tokens"] for b in blocks["heads_all"]]
                                    == [b["tokens"] for b in blocks["heads_base"]])
  training = [v for k, v in result.items() if k.endswith("_tok_s") and k != "pipeline_tok_s"
              and not k.startswith("reference")] or [result.get("reference_tok_s", 0.0)]
  if "pipeline_tok_s" in result and max(training) > 0:
    result["pipeline_over_training"] = result["pipeline_tok_s"] / max(training)


def run(argv=None) -> dict:
  """Runs the benchmark; returns the result dict (also what `main` prints)."""
  args = parse_args(argv)
  sizes = QUICK if args.quick else FULL
  workdir = args.workdir or tempfile.mkdtemp(prefix="auxseq_bench_")
  result = {"command": "python bench/throughput.py " + " ".join(argv or sys.argv[1:]),
            "parts": list(args.parts), "quick": args.quick, "workdir": workdir,
            "batch_tokens": args.batch_tokens, "model": sizes["model"],
            "vocab_size": sizes["vocab_size"], "flops_formula": FLOPS_NOTE}
  if "matmul" in args.parts:
    shapes = flops_lib.model_shapes(args.batch_tokens, vocab_size=sizes["vocab_size"],
                                    d_model=sizes["model"]["d_model"],
                                    ffn_dim=sizes["model"]["ffn_dim"])
    result.update(flops_lib.matmul_ceiling(sizes["matmul_square"], sizes["matmul_seconds"],
                                           tuple(shapes)))
    log("matmul ceiling: " + ", ".join(f"{k}={v:.0f}" for k, v in result.items()
                                       if k.startswith("matmul_")))
  lengths, data_dir, note = load_lengths(args, workdir, sizes)
  result.update(lengths_origin=lengths.origin, data=note,
                mean_source_tokens=float(lengths.source.mean()),
                mean_target_tokens=float(lengths.target.mean()))
  log(f"lengths: {lengths.origin}, {note}")
  setups = make_setups(args, workdir, data_dir, sizes)
  trainers = {}
  for name, precision in REFERENCES.items():
    if name in args.parts:
      trainers[name] = build_reference(args, lengths, sizes, result, precision)
  trainers.update(auxseq_runner.build_trainers(args.parts, setups, log))
  result["peak_rss_mb_after_build"] = peak_rss_mb()
  blocks = time_round_robin(trainers, args) if trainers else {}
  precisions = {n: setups[n].precision if n in setups else REFERENCES[n] for n in trainers}
  for name, trainer in trainers.items():
    result.update(summarize(name, blocks[name], result, precisions[name]))
    losses = (getattr(trainer, "losses", None) or [])
    if losses:
      result[f"{name}_loss"] = ({"start": losses[0], "end": losses[-1]} if name in REFERENCES
                                else auxseq_runner.first_last_loss(losses))
  if "pipeline" in args.parts:
    result.update(auxseq_runner.pipeline_rate(setups["auxseq_fp32"], sizes["pipeline_batches"],
                                              args.warmup_steps))
  derived(result, blocks)
  result["peak_rss_mb"] = peak_rss_mb()
  return result


def main(argv=None) -> int:
  result = run(argv)
  print(json.dumps(result, sort_keys=True))
  return 0


if __name__ == "__main__":
  sys.exit(main())
