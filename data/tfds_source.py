"""`--dataset=tfds`: a translation dataset already prepared by TensorFlow Datasets.

Corpus-scale users usually have their parallel data as TFDS datasets (`wmt14_translate/de-en`,
`wmt19_translate/...`, `ted_hrlr_translate/...`, or their own builders), prepared once with
`tfds build` or `tfds.load`. `--data_dir` names the prepared *version directory* (the one that
holds `dataset_info.json`, e.g. `~/tensorflow_datasets/wmt14_translate/de-en/1.0.0`);
`tfds.builder_from_directory` reads it without the builder's code and without any download.
Examples are streamed split by split into auxseq's prepared-data cache (data/prepare.py), so
memory stays flat at any corpus size; TFDS is imported only while preparing.

Features: a `Translation` feature (or two `Text` features) named by the language codes, i.e.
`--source_lang` and `--target_lang` must be feature names. Splits: `train`, and `validation` /
`test` under their TFDS names (`validation`, `valid`, `dev`; `test`). Whitespace inside a
sentence is normalised to single spaces (the cache stores one example a line); pairs with an
empty side are skipped and counted.
"""
import os

from configs.errors import UserError
from data.registry import collect, example, register_source, register_stream

# Our split -> the TFDS split names that may hold it, in order of preference.
SPLIT_NAMES = {"train": ("train",), "validation": ("validation", "valid", "dev"),
               "test": ("test",)}


def _builder(data_dir: str):
  if not data_dir or not os.path.isfile(os.path.join(data_dir, "dataset_info.json")):
    raise UserError(f"--dataset=tfds needs --data_dir=DIR of a prepared TFDS dataset version "
                    f"(the directory holding dataset_info.json, e.g. ~/tensorflow_datasets/"
                    f"wmt14_translate/de-en/1.0.0); {data_dir!r} is not one. Nothing is "
                    "downloaded: prepare it first with `tfds build`")
  import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  return tfds.builder_from_directory(data_dir)


def _split_map(builder, data_dir: str) -> dict:
  available = set(builder.info.splits.keys())
  found = {ours: next((n for n in names if n in available), None)
           for ours, names in SPLIT_NAMES.items()}
  missing = [ours for ours, theirs in found.items() if theirs is None]
  if missing:
    raise UserError(f"TFDS dataset {data_dir!r} has no {' / '.join(missing)} split; its splits: "
                    f"{', '.join(sorted(available))}")
  return found


def _check_languages(builder, data_dir: str, languages) -> None:
  names = set(builder.info.features.keys())
  missing = [lang for lang in languages if lang not in names]
  if missing:
    raise UserError(f"TFDS dataset {data_dir!r} has no feature {missing[0]!r} (--source_lang/"
                    f"--target_lang name its features); features: {', '.join(sorted(names))}")


def _text(value) -> str:
  text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
  return " ".join(text.split())


@register_stream("tfds")
def stream_tfds(data_dir: str, source_lang: str, target_lang: str):
  """(iterator of (split, example), stats filled while it runs); splits and features are
  checked before the first example is read."""
  builder = _builder(data_dir)
  splits = _split_map(builder, data_dir)
  _check_languages(builder, data_dir, (source_lang, target_lang))
  stats = {"dataset": builder.info.full_name, "empty_side_skipped": 0}

  def rows():
    for ours, theirs in splits.items():
      count = 0
      dataset = builder.as_dataset(split=theirs, shuffle_files=False)
      for item in dataset.as_numpy_iterator():
        source, target = _text(item[source_lang]), _text(item[target_lang])
        if not source or not target:
          stats["empty_side_skipped"] += 1
          continue
        count += 1
        yield ours, example(source, target)
      stats[f"{ours}_examples"] = count
    if not stats["train_examples"]:
      raise UserError(f"TFDS dataset {data_dir!r}: no training pair with both sides non-empty")
  return rows(), stats


@register_source("tfds", "a translation dataset prepared by TensorFlow Datasets: --data_dir = "
                 "its version directory (e.g. ~/tensorflow_datasets/wmt14_translate/de-en/1.0.0)")
def read_tfds(data_dir: str, source_lang: str, target_lang: str):
  """`stream_tfds` gathered into splits (small datasets and tests)."""
  return collect(*stream_tfds(data_dir, source_lang, target_lang))
