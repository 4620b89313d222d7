"""Training curves from a run's metrics.jsonl: dev BLEU and every loss against steps and wall time.

  python bench/plot_curves.py --metrics=WORKDIR/metrics.jsonl --out=docs/img/NAME
  python bench/plot_curves.py --metrics=A/metrics.jsonl,B/metrics.jsonl --labels=a,b --out=...

writes NAME/curves_step.png (always) and NAME/curves_wall.png (when records carry
`wall_seconds`), one panel per series: `validation bleu` (records of kind `validation`), then
every `loss*` key and `learning_rate` of the `train` records. Other kinds (final, evaluate,
inspect) are not curves and are ignored. A resumed run restarts its wall clock: a drop in
`wall_seconds`, or any record after a `final` one, starts a new segment, offset so that the
time axis keeps growing. A step logged twice (steps redone after a resume) keeps its last record.
Several runs (comma-separated --metrics) share the panels, one line per run. The last stdout
line is a JSON object naming the files written; bad input exits with status 2 and one `error:`
line on stderr.
"""
import argparse
import json
import math
import os
import sys
from typing import Dict, List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

from evaluation import plots  # noqa: E402

Series = Dict[str, Tuple[List[float], List[float]]]


class CurvesError(Exception):
  """Unusable input: the message is one line for the user."""


def read_records(path: str) -> List[dict]:
  """The JSON objects of `path` in file order; a last line still being written is skipped."""
  try:
    with open(path, encoding="utf-8") as f:
      text = f.read()
  except FileNotFoundError:
    raise CurvesError(f"--metrics {path!r} does not exist") from None
  lines = text.split("\n")
  records = []
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError:
      if number == len(lines):  # no newline yet: an append in progress
        continue
      raise CurvesError(f"{path}:{number} is not a JSON object") from None
  return records


def read_tensorboard(directory: str) -> List[dict]:
  """`train` records (step -> every scalar) from the TensorBoard event files in `directory`,
  for runs whose metrics.jsonl predates training records. No wall times (TensorBoard's are
  absolute and would not line up with the validation records')."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from tensorflow.core.util import event_pb2  # pylint: disable=import-outside-toplevel
  files = sorted(tf.io.gfile.glob(os.path.join(directory, "events.*")))
  if not files:
    raise CurvesError(f"--tensorboard {directory!r} holds no event files")
  by_step: Dict[int, dict] = {}
  for raw in tf.data.TFRecordDataset(files):
    event = event_pb2.Event.FromString(raw.numpy())
    for value in event.summary.value:
      if value.HasField("tensor"):
        record = by_step.setdefault(event.step, {"kind": "train", "step": event.step})
        record[value.tag] = float(tf.make_ndarray(value.tensor))
  return [by_step[s] for s in sorted(by_step)]


def with_wall_clock(records: List[dict]) -> List[dict]:
  """Copies of `records` whose `wall_seconds` (where present) grows across resumed segments."""
  offset, last, ended, result = 0.0, None, False, []
  for record in records:
    record = dict(record)
    wall = record.get("wall_seconds")
    if _number(wall):
      if last is not None and (wall < last or ended):
        offset += last  # a new process (after a drop, or after a final record) started at 0
      last, ended = wall, False
      record["wall_seconds"] = wall + offset
    ended = ended or record.get("kind") == "final"
    result.append(record)
  return result


def _latest_by_step(records: List[dict], kind: str) -> List[dict]:
  by_step = {}
  for record in records:
    if record.get("kind") == kind and isinstance(record.get("step"), (int, float)):
      by_step[record["step"]] = record
  return [by_step[s] for s in sorted(by_step)]


def _number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def collect_series(records: List[dict], x_key: str) -> Series:
  """{panel name: (x, y)} against `x_key` (`step` or `wall_seconds`); empty series dropped."""
  records = with_wall_clock(records)
  train = _latest_by_step(records, "train")
  validation = _latest_by_step(records, "validation")
  keys = sorted({k for r in train for k in r if k == "loss" or k.startswith("loss/")})
  if any("learning_rate" in r for r in train):
    keys.append("learning_rate")
  sources = [("validation bleu", validation, "bleu")] + [(k, train, k) for k in keys]
  series: Series = {}
  for name, rows, key in sources:
    points = [(r[x_key], r[key]) for r in rows if _number(r.get(x_key)) and _number(r.get(key))]
    if points:
      series[name] = ([p[0] for p in points], [p[1] for p in points])
  return series


def write_curves(records: List[dict], out_dir: str, title: str = "") -> Dict[str, str]:
  """Writes curves_step.png (and curves_wall.png when there are wall times); returns the paths."""
  return write_comparison({"": records}, out_dir, title)


def write_comparison(runs: Dict[str, List[dict]], out_dir: str, title: str = "") -> Dict[str, str]:
  """As write_curves, each panel with one line per run (keyed by its legend label)."""
  written = {}
  for x_key, label, name in (("step", "step", "curves_step.png"),
                             ("wall_seconds", "wall time (s)", "curves_wall.png")):
    by_run = {run: collect_series(records, x_key) for run, records in runs.items()}
    by_run = {run: series for run, series in by_run.items() if series}
    if by_run:
      fig = plots.compare_figure(by_run, label, title)
      written[x_key] = plots.save_png(fig, os.path.join(out_dir, name))
  if not written:
    raise CurvesError("no train or validation records with numbers to plot")
  return written


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--metrics", required=True, help="A run's metrics.jsonl, or several runs' "
                 "comma-separated: their curves share the panels (one line per run).")
  p.add_argument("--labels", default="", help="Comma-separated legend labels, one per --metrics "
                 "file (default: each file's directory name).")
  p.add_argument("--out", required=True, help="Directory for curves_step.png / curves_wall.png.")
  p.add_argument("--title", default="", help="Figure title (default: the metrics path).")
  p.add_argument("--tensorboard", default="", help="Also read training scalars from this "
                 "TensorBoard directory (WORKDIR/tensorboard/train), e.g. for older runs "
                 "(one --metrics file only).")
  return p.parse_args(argv)


def labelled_paths(metrics: str, labels: str) -> Dict[str, str]:
  """{legend label: metrics path} from the comma-separated flags, in the given order."""
  paths = [p.strip() for p in metrics.split(",") if p.strip()]
  if not paths:
    raise CurvesError("--metrics: give a metrics.jsonl path")
  names = [n.strip() for n in labels.split(",")] if labels else [
      os.path.basename(os.path.dirname(os.path.abspath(p))) for p in paths]
  if len(names) != len(paths) or len(set(names)) != len(names) or not all(names):
    raise CurvesError(f"--labels: need {len(paths)} distinct non-empty labels, one per --metrics "
                      f"file, got {labels!r}")
  return dict(zip(names, paths))


def main(argv=None) -> int:
  args = parse_args(argv)
  try:
    paths = labelled_paths(args.metrics, args.labels)
    if len(paths) > 1:
      if args.tensorboard:
        raise CurvesError("--tensorboard reads one run's scalars: give one --metrics file")
      runs = {label: read_records(path) for label, path in paths.items()}
      written = write_comparison(runs, args.out, args.title)
      count = sum(len(r) for r in runs.values())
    else:
      (path,) = paths.values()
      records = read_records(path)
      if args.tensorboard:  # metrics.jsonl's own train records come last and win per step
        records = read_tensorboard(args.tensorboard) + records
      written = write_curves(records, args.out, args.title or args.metrics)
      count = len(records)
  except CurvesError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(json.dumps({"written": written, "records": count}, sort_keys=True))
  return 0


if __name__ == "__main__":
  sys.exit(main())
