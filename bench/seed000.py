"""The seed-000 experiment: translation + a price head on one encoder, same step budget, six ways.

Rows: joint `fixed` (auxseq's default), `alternating` 10:1, `two_optimizers` (the seed-000
user's first attempt), and joint with `uncertainty`, `gradnorm`, `pcgrad`. Each row is a
separate `main.py` run in its own workdir on the embedded default data (gettext en-de + the
Airbnb listings mixed in for prices), scored on the test splits: BLEU/chrF on gettext, price
accuracy / macro-F1 on the listings.

  python bench/seed000.py --steps=600 --out=/tmp/seed000

Prints a markdown table, then (last line) one JSON object with every row's metrics.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ROWS = (
    ("joint fixed", ["--combiner=fixed"]),
    ("alternating 10:1", ["--schedule=alternating", "--alternate_ratio=10"]),
    ("two optimizers", ["--schedule=two_optimizers"]),
    ("joint uncertainty", ["--combiner=uncertainty"]),
    ("joint gradnorm", ["--combiner=gradnorm"]),
    ("joint pcgrad", ["--combiner=pcgrad"]),
)


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=600)
  parser.add_argument("--out", default="/tmp/auxseq_seed000")
  parser.add_argument("--only", default="", help="comma-separated row names (default: all)")
  parser.add_argument("--extra", default="--d_model=128 --ffn_dim=512 --num_layers=2 "
                      "--num_heads=4 --mix=tsv:0.3 --heads=price",
                      help="flags shared by every row")
  return parser.parse_args(argv)


def run_row(name, flags, args):
  workdir = os.path.join(args.out, name.replace(" ", "_").replace(":", "-"))
  command = [sys.executable, os.path.join(ROOT, "main.py"), f"--workdir={workdir}",
             f"--train_steps={args.steps}", "--checkpoint_every=200", "--overwrite",
             *args.extra.split(), *flags]
  start = time.time()
  proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  if proc.returncode != 0:
    return {"row": name, "error": proc.stderr.strip().splitlines()[-1:]}
  final = json.loads(proc.stdout.strip().splitlines()[-1])
  price = final.get("price", {})
  return {"row": name, "bleu": final.get("bleu"), "chrf": final.get("chrf"),
          "price_accuracy": price.get("accuracy"), "price_macro_f1": price.get("macro_f1"),
          "wall_s": round(time.time() - start, 1), "command": " ".join(command[1:])}


def main(argv=None):
  args = parse_args(argv)
  wanted = set(filter(None, args.only.split(",")))
  rows = [run_row(name, flags, args) for name, flags in ROWS if not wanted or name in wanted]
  print("| schedule / combiner | test BLEU | chrF | price acc | price macro-F1 | wall s |")
  print("|---|---|---|---|---|---|")
  for r in rows:
    if "error" in r:
      print(f"| {r['row']} | error: {r['error']} | | | | |")
    else:
      print(f"| {r['row']} | {r['bleu']:.2f} | {r['chrf']:.2f} | {r['price_accuracy']:.3f} | "
            f"{r['price_macro_f1']:.3f} | {r['wall_s']:.0f} |")
  print(json.dumps({"steps": args.steps, "rows": rows}))
  return 0


if __name__ == "__main__":
  sys.exit(main())
