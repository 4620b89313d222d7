"""Counts of the embedded default data per language pair (written into docs/data.md).

  python bench/data_counts.py de fr
"""
import sys
import os

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data.sources import read_gettext, read_tsv  # noqa: E402


def main(langs):
  print("| pair | catalogs (domains) | entries read | identical/empty | < 3 words | duplicates "
        "| train | validation | test |")
  print("|---|---|---|---|---|---|---|---|---|")
  for lang in langs:
    splits, s = read_gettext("", "en", lang)
    domains = len({row["domain"] for rows in splits.values() for row in rows})
    print(f"| en-{lang} | {s['catalogs']} ({domains}) | {s['entries']} | "
          f"{s['dropped_identical_or_empty']} | {s['dropped_short']} | {s['duplicates']} | "
          f"{s['train_examples']} | {s['validation_examples']} | {s['test_examples']} |")
  _, t = read_tsv("", "en", "de")
  print(f"\nListings (tsv): {t['rows']} rows, {t['prices_masked']} prices masked; train "
        f"{t['train_examples']}, validation {t['validation_examples']}, test {t['test_examples']}")


if __name__ == "__main__":
  main(sys.argv[1:] or ["de", "fr"])
