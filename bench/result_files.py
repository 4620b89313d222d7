"""The per-(row, seed) result files of the resumable benches (bench/seed000.py,
bench/price_head.py): a run is done when its JSON file exists, so the file is written last and
atomically, and a rerun skips what is there."""
import json
import os
import sys
from typing import Callable, Dict, Iterable, List


def write_json(path: str, value: dict) -> None:
  """`value` as JSON at `path`, written to a temporary file and renamed (never half-written)."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(value, f, indent=1)
  os.replace(path + ".tmp", path)


# Result files written before they recorded `precision` (2026-12-03) trained in the then default.
PRECISION_BEFORE_AUTO = "mixed_bfloat16"


def run_precision(workdir: str) -> str:
  """The precision a finished run trained in: its config's, with `auto` resolved for this host
  (the bench runs where its runs ran)."""
  from training import hardware  # pylint: disable=import-outside-toplevel
  with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
    precision = json.load(f).get("train", {}).get("precision", "auto")
  return hardware.resolve_precision(precision)


def load_results(rows: Iterable[str], seeds: int,
                 path_of: Callable[[str, int], str]) -> Dict[str, List[dict]]:
  """{row: [result of each seed 1..seeds that has a file]}; rows without any are left out."""
  results = {}
  for row in rows:
    for seed in range(1, seeds + 1):
      path = path_of(row, seed)
      if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
          results.setdefault(row, []).append(json.load(f))
  return results


def run_rows(only: str, rows: Iterable[str], seeds: Iterable[int],
             path_of: Callable[[str, int], str], run_one: Callable[[str, int], dict],
             describe: Callable[[dict], str]) -> int:
  """Runs every (row, seed) of the rows named in `only` (';'-separated; all when empty) that has
  no result file, seed-major (every row gets seed k before seed k + 1, so a session that stops
  early leaves whole seeds), one stderr line per run. Returns 2 after one `error:` line when
  `only` names an unknown row, else 0."""
  rows = list(rows)
  wanted = [r for r in only.split(";") if r] or rows
  unknown = sorted(set(wanted) - set(rows))
  if unknown:
    print(f"error: unknown rows {unknown}; known: {'; '.join(rows)}", file=sys.stderr)
    return 2
  for seed in seeds:
    for row in wanted:
      if not os.path.isfile(path_of(row, seed)):
        result = run_one(row, seed)
        print(f"{row} seed {seed}: {describe(result)}", file=sys.stderr, flush=True)
  return 0
