"""TFDS builders over the raw-text readers: versioned, with splits and features, prepared once
into WORKDIR/tfds so reruns are fast and the training iterator (file-based) is checkpointable."""
import hashlib
import json
import os
from typing import Tuple

import tensorflow as tf
import tensorflow_datasets as tfds

from data import sources

tfds.disable_progress_bar()

FEATURES = {"source": tfds.features.Text(), "target": tfds.features.Text(),
            "domain": tfds.features.Text(), "price": tfds.features.Scalar(tf.float32)}


class AuxseqTextConfig(tfds.core.BuilderConfig):
  """Which reader, on which files, for which language pair."""

  def __init__(self, *, reader: str, data_dir: str, source_lang: str, target_lang: str, **kw):
    self.reader, self.data_dir = reader, data_dir
    self.source_lang, self.target_lang = source_lang, target_lang
    super().__init__(name=_config_name(reader, data_dir, source_lang, target_lang), **kw)


def _fingerprint(path: str) -> str:
  """Path + size + mtime of every file under `path` (re-prepare when the files change)."""
  if not path:
    return ""
  files = [path] if os.path.isfile(path) else sorted(
      os.path.join(d, f) for d, _, names in os.walk(path) for f in names)
  return json.dumps([(f, os.path.getsize(f), int(os.path.getmtime(f))) for f in files[:5000]])


def _config_name(reader, data_dir, source_lang, target_lang) -> str:
  key = hashlib.sha256(_fingerprint(os.path.abspath(data_dir) if data_dir else "").encode())
  return f"{reader}_{source_lang}_{target_lang}_{key.hexdigest()[:10]}"


class AuxseqText(tfds.core.GeneratorBasedBuilder):
  """Source/target text with a domain label and a price; missing parts empty / NaN."""
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "source, target, domain, price; train/validation/test."}

  def __init__(self, *, config: AuxseqTextConfig, **kwargs):
    self._raw = None
    super().__init__(config=config, **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(builder=self, description=__doc__,
                                 features=tfds.features.FeaturesDict(FEATURES))

  def read(self) -> Tuple[dict, dict]:
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


def prepare(reader: str, data_dir: str, source_lang: str, target_lang: str, workdir: str):
  """Builds (once) and returns the TFDS builder; its stats are saved beside the data."""
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
