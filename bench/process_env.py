"""Training throughput under process-wide settings that only take effect when a process starts
(the allocator, thread pools), each setting in its own process, the settings timed alternately
in one run so that load changes on a shared machine hit all of them alike.

  python bench/process_env.py     # as shipped (BFC allocator), malloc, an inter-op pool of 1
  python bench/process_env.py --settings=TF_CPU_ALLOCATOR_USE_BFC=false,default --rounds=4

A setting is `default` (the environment as it is, plus training/process_env.py's defaults, which
bench/throughput.py applies as main.py does) or VAR=VALUE pairs joined by `+`, e.g.
`TF_NUM_INTEROP_THREADS=1+TF_NUM_INTRAOP_THREADS=2`, `MALLOC_MMAP_MAX_=0`. Each is given to a
child `bench/throughput.py --only=auxseq_<kind>`, where kind is the host's `--precision=auto`
(fp32, or bf16 where bfloat16 is native). Every child trains the same batches (same seed and
stream); each round runs every setting once, the order rotated from round to round. The first
setting is the reference: per round each setting's tok/s over the reference's, then the mean of
those ratios with a 95% t interval, and the child's minor page faults per timed step (pages the
kernel handed to the process: many a step means large buffers go back to the system and are
asked for again). The last stdout line is one JSON object.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Dict, List, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

from bench import stats  # noqa: E402

DEFAULT_SETTINGS = "default,TF_CPU_ALLOCATOR_USE_BFC=false,TF_NUM_INTEROP_THREADS=1"


def parse_settings(text: str) -> List[Dict[str, str]]:
  """"default,A=1+B=2" -> [{}, {"A": "1", "B": "2"}]; at least two distinct settings."""
  settings, labels = [], []
  for item in (s.strip() for s in text.split(",")):
    env = {}
    if item != "default":
      for pair in item.split("+"):
        name, sep, value = pair.partition("=")
        if not sep or not name or not value or not name.replace("_", "").isalnum():
          raise SystemExit(f"error: --settings takes `default` or VAR=VALUE pairs joined by "
                           f"`+`, comma-separated, got {item!r}")
        env[name] = value
    settings.append(env)
    labels.append(label(env))
  if len(set(labels)) != len(labels) or len(settings) < 2:
    raise SystemExit(f"error: --settings needs at least two distinct settings, got {text!r}")
  return settings


def label(env: Dict[str, str]) -> str:
  return "+".join(f"{k}={v}" for k, v in sorted(env.items())) or "default"


def rotated(settings: Sequence, round_index: int) -> List:
  """Round r runs the settings starting from the r-th (so none always runs first)."""
  k = round_index % len(settings)
  return list(settings[k:]) + list(settings[:k])


def summarize(labels: Sequence[str], tok_s: Dict[str, List[float]]) -> Dict:
  """Per setting: tok/s of each round, their mean, and the per-round ratio to the first setting
  (mean ± 95% t interval over rounds)."""
  reference = tok_s[labels[0]]
  out = {}
  for name in labels:
    rounds = tok_s[name]
    ratios = [a / b for a, b in zip(rounds, reference)]
    ci = stats.mean_ci(ratios)
    out[name] = {"tok_s_rounds": rounds, "tok_s_mean": sum(rounds) / len(rounds),
                 "ratio_rounds": ratios, "ratio_mean": ci["mean"],
                 "ratio_half_width": ci["half_width"]}
  return out


def host_part() -> str:
  from training import hardware  # pylint: disable=import-outside-toplevel
  return "auxseq_bf16" if "bfloat16" in hardware.resolve_precision("auto") else "auxseq_fp32"


def run_child(part: str, env: Dict[str, str], args, workdir: str) -> Dict[str, float]:
  """One child: its tok/s, minor page faults per timed step and peak resident memory."""
  command = [sys.executable, os.path.join(ROOT, "bench", "throughput.py"), f"--only={part}",
             f"--steps={args.steps}", f"--warmup_steps={args.warmup_steps}", "--rounds=1",
             f"--workdir={workdir}", f"--data_dir={args.data_dir}"] + (
                 ["--quick"] if args.quick else [])
  done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True,
                        check=False)
  if done.returncode != 0:
    tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
    raise SystemExit(f"error: setting {label(env)}: bench/throughput.py exited "
                     f"{done.returncode}: {tail}")
  result = json.loads(done.stdout.strip().splitlines()[-1])
  return {"tok_s": float(result[f"{part}_tok_s"]),
          "minflt_per_step": float(result[f"{part}_minflt_per_step"]),
          "peak_rss_mb": float(result["peak_rss_mb"])}


def run(argv=None) -> Dict:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--settings", default=DEFAULT_SETTINGS,
                 help="`default` or VAR=VALUE pairs joined by +, comma-separated; the first is "
                      "the reference")
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--steps", type=int, default=30, help="timed steps per child")
  p.add_argument("--warmup_steps", type=int, default=10, help="untimed steps first (tracing)")
  p.add_argument("--quick", action="store_true", help="tiny model (tests)")
  p.add_argument("--data_dir", default=os.path.join(os.path.dirname(ROOT), "shared", "data",
                                                    "multi30k"))
  p.add_argument("--workdir", default="", help="cache for the tokenizer and data")
  args = p.parse_args(argv)
  settings = parse_settings(args.settings)
  if args.rounds < 2:
    raise SystemExit(f"error: --rounds needs at least 2 (an interval over rounds), got "
                     f"{args.rounds}")
  workdir = args.workdir or tempfile.mkdtemp(prefix="auxseq_env_")
  part = host_part()
  labels = [label(env) for env in settings]
  children = {name: [None] * args.rounds for name in labels}  # run_child's result, per round
  for r in range(args.rounds):
    for env in rotated(settings, r):
      name = label(env)
      child = children[name][r] = run_child(part, env, args, workdir)
      print(f"round {r + 1}/{args.rounds} {name}: {child['tok_s']:.0f} tok/s, "
            f"{child['minflt_per_step']:.0f} minor faults a step, peak RSS "
            f"{child['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
  summary = summarize(labels, {n: [c["tok_s"] for c in children[n]] for n in labels})
  for name in labels:
    summary[name]["minflt_per_step_rounds"] = [c["minflt_per_step"] for c in children[name]]
    summary[name]["peak_rss_mb_rounds"] = [c["peak_rss_mb"] for c in children[name]]
  return {"part": part, "cores": os.cpu_count(), "steps": args.steps, "rounds": args.rounds,
          "settings": summary}


def main(argv=None) -> int:
  print(json.dumps(run(argv), sort_keys=True))
  return 0


if __name__ == "__main__":
  sys.exit(main())
