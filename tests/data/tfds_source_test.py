"""`--dataset=tfds`: a prepared TensorFlow Datasets translation dataset, streamed into the cache.

The dataset here is built by a tiny TFDS builder in a temporary directory (no download), which is
what `tfds build` leaves on a user's disk."""
import pytest
import tensorflow_datasets as tfds

from configs.config import DataConfig, DataSourceConfig
from configs.errors import UserError
from data import tfds_source

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()


class TinyTranslation(tfds.core.GeneratorBasedBuilder):
  """en/de pairs: 'w1 w2 w3' -> the same words reversed; the second train pair has an empty
  German side (skipped); the English side carries a tab and double spaces (normalised)."""
  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.Translation(
        languages=("en", "de")))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples(200, 0), "validation": self._generate_examples(10, 1),
            "test": self._generate_examples(12, 2)}

  def _generate_examples(self, n, offset):
    for i in range(n):
      words = [WORDS[(i * 7 + offset + k) % len(WORDS)] for k in range(3)]
      german = "" if (i == 1 and offset == 0) else " ".join(reversed(words))
      yield i, {"en": words[0] + "\t" + words[1] + "  " + words[2], "de": german}


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
  builder = TinyTranslation(data_dir=str(tmp_path_factory.mktemp("tfds")))
  builder.download_and_prepare()
  return builder.data_dir


def test_stream_reads_every_split_normalises_and_counts(tfds_dir):
  splits, stats = tfds_source.read_tfds(tfds_dir, "en", "de")
  assert {k: len(v) for k, v in splits.items()} == {"train": 199, "validation": 10, "test": 12}
  assert stats["empty_side_skipped"] == 1 and stats["train_examples"] == 199
  for row in splits["test"]:
    assert row["target"].split() == list(reversed(row["source"].split()))
    assert "\t" not in row["source"] and "  " not in row["source"]


def test_wrong_directory_language_or_split_is_one_clear_error(tfds_dir, tmp_path):
  with pytest.raises(UserError, match="not one. Nothing is downloaded"):
    tfds_source.stream_tfds(str(tmp_path), "en", "de")
  with pytest.raises(UserError, match=r"has no feature 'fr' .*features: de, en"):
    tfds_source.stream_tfds(tfds_dir, "en", "fr")


def test_prepared_through_the_pipeline_into_batches(tfds_dir, tmp_path):
  import data  # pylint: disable=import-outside-toplevel
  config = DataConfig(sources=(DataSourceConfig("tfds", tfds_dir),), vocab_size=40,
                      batch_tokens=64, max_length=16, shuffle_buffer=50)
  bundle = data.load_data(config, str(tmp_path / "work"), seed=3)
  batch = next(iter(bundle.train_dataset(64, 0)))
  assert batch["source"].shape[0] >= 1 and int(batch["target_out"].numpy().max()) > 3
  references = [t.decode() for b in bundle.eval_dataset("test", 8) for t in
                b["target_text"].numpy()]
  assert len(references) == 12
