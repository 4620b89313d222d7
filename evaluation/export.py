"""`--mode=export`: a SavedModel whose serving signature maps raw strings to translations and
head predictions, with SentencePiece tokenisation inside the graph (only TensorFlow and
tensorflow-text are needed to load it)."""
import json
import os

import tensorflow as tf
import tensorflow_text as tf_text

from data.special_ids import BOS, EOS
from heads.base import call_head, float32_outputs
from model import decoding
from training.workdir import atomic_directory


class Translator(tf.Module):
  """Raw source strings -> {"translation": strings, "<head>/<key>": predictions}."""

  def __init__(self, model, heads, source_model_path, target_model_path, eval_config,
               max_source_length):
    super().__init__(name="translator")
    self.model = model
    self.heads = [h for h in heads if h.head_name != "translation"]
    self.source_tokenizer = tf_text.SentencepieceTokenizer(
        model=tf.io.gfile.GFile(source_model_path, "rb").read(), out_type=tf.int32)
    self.target_tokenizer = tf_text.SentencepieceTokenizer(
        model=tf.io.gfile.GFile(target_model_path, "rb").read(), out_type=tf.int32)
    self.eval_config = eval_config
    self.max_source_length = max_source_length
    self.variables_ = list(model.variables) + [v for h in self.heads for v in h.variables]

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def translate(self, sources):
    pieces = self.source_tokenizer.tokenize(sources)[:, : self.max_source_length - 1]
    eos = tf.fill([tf.shape(sources)[0], 1], EOS)
    source = tf.concat([pieces, tf.RaggedTensor.from_tensor(eos)], axis=1).to_tensor()
    ids = decoding.decode(self.model, source, self.eval_config.beam_size,
                          self.eval_config.length_penalty, self.eval_config.max_decode_length)
    result = {"translation": self._detokenize(ids)}
    encoded = float32_outputs(self.model.encode(source, training=False))
    for head in self.heads:
      if set(head.reads) <= set(encoded):
        for key, value in call_head(head, head.predict, encoded).items():
          result[f"{head.head_name}/{key}"] = value
    return result

  def _detokenize(self, ids):
    """Cut at the first EOS, drop padding, detokenise."""
    ids = tf.cast(ids, tf.int32)
    before_eos = tf.cumsum(tf.cast(tf.equal(ids, EOS), tf.int32), axis=1, exclusive=True) == 0
    keep = before_eos & (ids != EOS) & (ids != 0) & (ids != BOS)
    return self.target_tokenizer.detokenize(tf.ragged.boolean_mask(ids, keep))


LABELS_FILE = "labels.json"


def label_meanings(heads) -> dict:
  """What integer head outputs mean, for LABELS_FILE beside the SavedModel: the class names of
  outputs named after a label with names (e.g. "domain/domain" -> sorted domain names) and the
  bucket edges of bucketing heads (e.g. "price/price_bucket" -> {"edges": [...]}: bucket i
  holds prices in [edges[i-1], edges[i]))."""
  meanings = {}
  for head in heads:
    names = (getattr(head.context, "label_info", None) or {}).get(head.head_name)
    if isinstance(names, tuple) and names:
      meanings[f"{head.head_name}/{head.head_name}"] = list(names)
    edges = getattr(head, "edges", None)
    if edges is not None:
      meanings[f"{head.head_name}/{head.head_name}_bucket"] = {
          "edges": [float(e) for e in tf.convert_to_tensor(edges).numpy()]}
  return meanings


def export(components, directory: str) -> str:
  """Writes the SavedModel atomically (temporary directory, then rename). Returns its path."""
  bundle, config = components.bundle, components.config
  translator = Translator(components.model, components.heads, bundle.source_tokenizer.model_path,
                          bundle.target_tokenizer.model_path, config.eval,
                          4 * config.data.max_length)
  with atomic_directory(directory, ".export-") as tmp:
    tf.saved_model.save(translator, tmp, signatures={"serving_default": translator.translate})
    with open(os.path.join(tmp, LABELS_FILE), "w", encoding="utf-8") as f:
      json.dump(label_meanings(translator.heads), f, indent=2, sort_keys=True)
  return directory

