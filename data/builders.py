"""TFDS builders over the registered readers: versioned, with splits and features, prepared once
into WORKDIR/tfds so reruns are fast and the training iterator (file-based) is checkpointable."""
import hashlib
import json
import os
from typing import Dict, List, Tuple

import tensorflow as tf
import tensorflow_datasets as tfds

from data import sources

tfds.disable_progress_bar()

FEATURES = {"source": tfds.features.Text(), "target": tfds.features.Text(),
            "domain": tfds.features.Text(), "price": tfds.features.Scalar(tf.float32),
            "alignment": tfds.features.Text()}


class AuxseqTextConfig(tfds.core.BuilderConfig):
  """Which reader, on which files, for which language pair (the name fingerprints the files)."""

  def __init__(self, *, reader: str, data_dir: str, source_lang: str, target_lang: str, **kw):
    self.reader, self.data_dir = reader, data_dir
    self.source_lang, self.target_lang = source_lang, target_lang
    key = hashlib.sha256(_fingerprint(_watched_path(reader, data_dir, target_lang)).encode())
    super().__init__(name=f"{reader}_{source_lang}_{target_lang}_{key.hexdigest()[:10]}", **kw)


def _watched_path(reader: str, data_dir: str, target_lang: str) -> str:
  """The files whose change must re-prepare the dataset."""
  if reader == "gettext":
    return os.path.join(data_dir or sources.DEFAULT_LOCALE_ROOT, target_lang, "LC_MESSAGES")
  if reader == "tsv" and not data_dir:
    return sources.EMBEDDED_TSV
  return os.path.abspath(data_dir) if data_dir else ""


def _fingerprint(path: str) -> str:
  """Path, size and mtime of every file under `path` (first 5000, sorted)."""
  if not path or not os.path.exists(path):
    return path
  files = [path] if os.path.isfile(path) else sorted(
      os.path.join(d, f) for d, _, names in os.walk(path) for f in names)
  return json.dumps([(f, os.path.getsize(f), int(os.path.getmtime(f))) for f in files[:5000]])


class AuxseqText(tfds.core.GeneratorBasedBuilder):
  """Source/target text with a domain label, a price and word alignments; missing parts empty /
  NaN. A new version is prepared into its own directory, so a cache of an older one is not read."""
  VERSION = tfds.core.Version("1.2.0")
  RELEASE_NOTES = {"1.0.0": "source, target, domain, price; train/validation/test.",
                   "1.1.0": "file order kept; gettext: mid-word accelerators, plural forms.",
                   "1.2.0": "alignment: Pharaoh i-j word links (parallel_text *.align files)."}

  def __init__(self, *, config: AuxseqTextConfig, **kwargs):
    self._raw = None
    super().__init__(config=config, **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    # disable_shuffling keeps the files' order: evaluation output lines up with the input.
    return tfds.core.DatasetInfo(builder=self, description=__doc__, disable_shuffling=True,
                                 features=tfds.features.FeaturesDict(FEATURES))

  def read(self) -> Tuple[Dict[str, List[dict]], dict]:
    """Runs the reader once: ({split: rows}, stats)."""
    if self._raw is None:
      c = self.builder_config
      self._raw = sources.get_reader(c.reader)(c.data_dir, c.source_lang, c.target_lang)
    return self._raw

  def _split_generators(self, dl_manager):
    del dl_manager
    splits, _ = self.read()
    return {name: self._generate_examples(rows) for name, rows in splits.items() if rows}

  def _generate_examples(self, rows):
    for i, row in enumerate(rows):
      yield i, row

  def rows(self, split: str) -> List[dict]:
    """The prepared `split` as Python dicts (str texts, float price), in file order."""
    if split not in self.info.splits:
      return []
    rows = []
    for batch in tfds.as_numpy(self.as_dataset(split=split, shuffle_files=False).batch(8192)):
      columns = {k: (v.tolist() if k == "price" else [t.decode("utf-8") for t in v])
                 for k, v in batch.items()}
      rows.extend(dict(zip(columns, values)) for values in zip(*columns.values()))
    return rows


def prepare(reader: str, data_dir: str, source_lang: str, target_lang: str,
            workdir: str) -> AuxseqText:
  """Builds (once) and returns the TFDS builder; its reader stats are in `.auxseq_stats`."""
  sources.get_reader(reader)  # unknown names fail before anything is written
  config = AuxseqTextConfig(reader=reader, data_dir=data_dir, source_lang=source_lang,
                            target_lang=target_lang)
  builder = AuxseqText(config=config, data_dir=os.path.join(workdir, "tfds"))
  stats_path = os.path.join(builder.data_dir, "auxseq_stats.json")
  if not os.path.exists(stats_path):
    _, stats = builder.read()  # user errors surface here, before TFDS writes anything
    builder.download_and_prepare(file_format="tfrecord")
    tmp = stats_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump(stats, f, indent=1, sort_keys=True)
    os.replace(tmp, stats_path)
  with open(stats_path, encoding="utf-8") as f:
    builder.auxseq_stats = json.load(f)
  return builder
