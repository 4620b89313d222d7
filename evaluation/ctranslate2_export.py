"""`--mode=export --export_format=ctranslate2`: the Transformer as a CTranslate2 model directory.

The spec is built with CTranslate2's Python spec API (`TransformerSpec.from_config`), weight by
weight from our Keras layers (model/transformer.py, model/layers.py, model/attention.py):

- pre-LayerNorm layers with a final LayerNorm on each stack, epsilon 1e-6 (ours; CTranslate2's
  `layer_norm_epsilon` config is set to it);
- attention projections without bias; Keras kernels are [in, out], CTranslate2 weights
  [out, in]; self-attention Q, K, V fused into one [3D, D] matrix, cross-attention K, V into
  one [2D, D] matrix (query separate), in that order;
- token embeddings times sqrt(d_model) (CTranslate2's `scale_embeddings`), plus *our*
  sinusoidal table: channels interleaved sin/cos (CTranslate2's built-in table puts all sines
  first), so the table itself is stored, `POSITION_TABLE_LENGTH` rows (the longest source or
  output it can encode);
- tied embeddings: one table as source embedding, target embedding and output projection
  (CTranslate2 aliases identical arrays once); untied: the Dense projection with its bias;
- vocabulary: the SentencePiece pieces in id order, so ids 0..3 are `<pad>`, `<unk>`, `<s>`,
  `</s>`, which are CTranslate2's default unk/bos/eos/decoder-start tokens.

Beside the model: the SentencePiece model(s) and `auxseq.json` (which pieces file serves which
side, how sources are capped, the decoding defaults of the run).
"""
import json
import os
import shutil

import numpy as np

from configs.errors import UserError
from training.workdir import atomic_directory

LAYER_NORM_EPSILON = 1e-6  # model/transformer.py _norm
POSITION_TABLE_LENGTH = 1024
QUANTIZATIONS = ("int8", "int8_float32", "float32")
MANIFEST = "auxseq.json"


def _ct2():
  try:
    import ctranslate2  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise UserError("--export_format=ctranslate2 needs the ctranslate2 package "
                    "(pip install -r requirements.txt)") from None
  return ctranslate2


def check_exportable(config) -> None:
  """One line why a configuration cannot be served by CTranslate2 (before building anything)."""
  if config.model.model != "transformer":
    raise UserError(f"--export_format=ctranslate2 supports --model=transformer only, got "
                    f"--model={config.model.model}: CTranslate2 has no spec for our LSTM/GRU "
                    "encoder-decoder with attention (use the SavedModel export)")
  if config.eval.quantization not in QUANTIZATIONS:
    raise UserError(f"--quantization must be one of {', '.join(QUANTIZATIONS)}, got "
                    f"{config.eval.quantization!r}")


def _t(dense) -> np.ndarray:
  """A Keras Dense kernel [in, out] as a CTranslate2 weight [out, in] (float32)."""
  return np.ascontiguousarray(np.asarray(dense.kernel.numpy(), np.float32).T)


def _set_linear(spec, dense) -> None:
  spec.weight = _t(dense)
  if dense.use_bias:
    spec.bias = np.asarray(dense.bias.numpy(), np.float32)


def _set_norm(spec, norm) -> None:
  spec.gamma = np.asarray(norm.gamma.numpy(), np.float32)
  spec.beta = np.asarray(norm.beta.numpy(), np.float32)


def _set_ffn(spec, norm, ffn) -> None:
  _set_norm(spec.layer_norm, norm)
  _set_linear(spec.linear_0, ffn.inner)
  _set_linear(spec.linear_1, ffn.outer)


def _set_self_attention(spec, norm, attention) -> None:
  _set_norm(spec.layer_norm, norm)
  spec.linear[0].weight = np.concatenate(
      [_t(attention.query), _t(attention.key), _t(attention.value)], axis=0)
  spec.linear[1].weight = _t(attention.output_dense)


def _set_cross_attention(spec, norm, attention) -> None:
  _set_norm(spec.layer_norm, norm)
  spec.linear[0].weight = _t(attention.query)
  spec.linear[1].weight = np.concatenate([_t(attention.key), _t(attention.value)], axis=0)
  spec.linear[2].weight = _t(attention.output_dense)


def build_spec(model, source_pieces, target_pieces):
  """A validated `ctranslate2.specs.TransformerSpec` holding the weights of `model`
  (a TransformerSeq2Seq) and both vocabularies (lists of pieces in id order)."""
  from model.layers import sinusoidal_positions  # pylint: disable=import-outside-toplevel
  specs = _ct2().specs
  c = model.config
  spec = specs.TransformerSpec.from_config(c.num_layers, c.num_heads, pre_norm=True)
  spec.config.layer_norm_epsilon = LAYER_NORM_EPSILON
  positions = sinusoidal_positions(0, POSITION_TABLE_LENGTH, c.d_model).numpy()
  encoder, decoder = spec.encoder, spec.decoder
  encoder.embeddings[0].weight = model.source_embedding.embedding.embeddings.numpy()
  decoder.embeddings.weight = model.target_embedding.embedding.embeddings.numpy()
  encoder.position_encodings.encodings = positions
  decoder.position_encodings.encodings = positions
  for layer_spec, layer in zip(encoder.layer, model.encoder.layers_):
    _set_self_attention(layer_spec.self_attention, layer.norm1, layer.attention)
    _set_ffn(layer_spec.ffn, layer.norm2, layer.ffn)
  for layer_spec, layer in zip(decoder.layer, model.decoder.layers_):
    _set_self_attention(layer_spec.self_attention, layer.norm1, layer.self_attention)
    _set_cross_attention(layer_spec.attention, layer.norm2, layer.cross_attention)
    _set_ffn(layer_spec.ffn, layer.norm3, layer.ffn)
  _set_norm(encoder.layer_norm, model.encoder.final_norm)
  _set_norm(decoder.layer_norm, model.decoder.final_norm)
  if model.output_projection is None:  # tied: logits = x . embedding^T
    decoder.projection.weight = decoder.embeddings.weight
  else:
    _set_linear(decoder.projection, model.output_projection)
  spec.register_source_vocabulary(list(source_pieces))
  spec.register_target_vocabulary(list(target_pieces))
  spec.validate()
  return spec


def _pieces(tokenizer):
  import sentencepiece as spm  # pylint: disable=import-outside-toplevel
  sp = spm.SentencePieceProcessor(model_file=tokenizer.model_path)
  return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def manifest(config, checkpoint: str, source_file: str, target_file: str,
             weights: str = "") -> dict:
  return {"source_spm": source_file, "target_spm": target_file, "weights": weights,
          "source_cap": 4 * config.data.max_length, "source_eos": "</s>",
          "quantization": config.eval.quantization, "checkpoint": checkpoint,
          "beam_size": config.eval.beam_size, "length_penalty": config.eval.length_penalty,
          "max_decode_length": config.eval.max_decode_length,
          "position_table_length": POSITION_TABLE_LENGTH}


def export_ctranslate2(components, directory: str, checkpoint: str = "",
                       weights: str = "") -> str:
  """Writes the CTranslate2 model, its SentencePiece model(s) and auxseq.json to `directory`
  atomically (a temporary directory beside it, then a rename). Returns `directory`. `weights`:
  the workdir's weights fingerprint (ctranslate2_modes.weights_fingerprint) it was made from."""
  config, bundle = components.config, components.bundle
  check_exportable(config)
  src, tgt = bundle.source_tokenizer, bundle.target_tokenizer
  spec = build_spec(components.model, _pieces(src), _pieces(tgt))
  with atomic_directory(directory, ".ctranslate2-") as tmp:
    spec.optimize(quantization=config.eval.quantization)
    spec.save(tmp)
    names = ("spm.model", "spm.model") if src is tgt else ("spm.src.model", "spm.tgt.model")
    shutil.copyfile(src.model_path, os.path.join(tmp, names[0]))
    shutil.copyfile(tgt.model_path, os.path.join(tmp, names[1]))
    with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as f:
      json.dump(manifest(config, checkpoint, *names, weights=weights), f, indent=2, sort_keys=True)
  return directory
