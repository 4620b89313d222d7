"""Prepares the embedded sources (data/prepare.py) and prints their counts (docs/data.md).

  python -m data.counts --workdir=/tmp/auxseq_counts de fr
"""
import argparse
import time

from data import prepare as prep

_COLUMNS = ("catalogs", "entries", "dropped_identical_or_empty", "dropped_short", "duplicates")


def gettext_row(lang: str, workdir: str) -> str:
  start = time.time()
  builder = prep.prepare("gettext", "", "en", lang, workdir)
  splits = builder.splits
  s = builder.auxseq_stats
  counts = [splits[n].num_examples if n in splits else 0 for n in ("train", "validation", "test")]
  return (f"| en-{lang} | {s['domains']} | " + " | ".join(str(s[c]) for c in _COLUMNS) + " | "
          + " | ".join(map(str, counts)) + f" | {time.time() - start:.1f} |")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--workdir", default="/tmp/auxseq_counts")
  parser.add_argument("langs", nargs="*", default=["de", "fr"])
  args = parser.parse_args()
  print("| pair | domains | catalogs | entries | identical/empty | < 3 words | duplicates "
        "| train | validation | test | prepare s |")
  print("|---" * 11 + "|")
  for lang in args.langs:
    print(gettext_row(lang, args.workdir))
  tsv = prep.prepare("tsv", "", "en", "de", args.workdir)
  s = tsv.auxseq_stats
  print(f"\ntsv (embedded listings): {s['rows']} rows, {s['prices_masked']} prices masked; "
        f"train {s['train_examples']}, validation {s['validation_examples']}, "
        f"test {s['test_examples']}")


if __name__ == "__main__":
  main()
