"""The CTranslate2 side of the modes (training/modes.py dispatches here):
`--mode=export --export_format=ctranslate2`, `--mode=translate|evaluate --engine=ctranslate2`."""
import json
import os
import sys

from absl import logging

from configs.config import Config
from configs.errors import UserError


def default_directory(config: Config) -> str:
  return config.eval.ctranslate2_dir or os.path.join(config.workdir, "ctranslate2")


def export(config: Config, directory: str, components=None) -> str:
  """Exports WORKDIR's inference weights (best/latest/averaged/EMA, as every mode restores
  them) to `directory`; the configuration is checked before anything is built."""
  from evaluation.ctranslate2_export import check_exportable, export_ctranslate2
  from training.modes import components_for_inference
  check_exportable(config)
  c = components if components is not None else components_for_inference(config)
  return export_ctranslate2(c, directory, checkpoint=f"step {int(c.step.numpy())}")


def export_mode(config: Config) -> dict:
  directory = config.eval.output_file or os.path.join(config.workdir, "ctranslate2")
  path = export(config, directory)
  return {"kind": "export", "format": "ctranslate2", "path": path,
          "quantization": config.eval.quantization}


def stale_export_note(workdir: str, directory: str) -> str:
  """A warning when WORKDIR has checkpoints newer than the step the export was made from
  ('' otherwise): the directory is reused as it is, never re-exported behind the user's back."""
  path = os.path.join(directory, "auxseq.json")
  exported = ""
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      exported = json.load(f).get("checkpoint", "")
  steps = [int(n[5:-6]) for n in os.listdir(os.path.join(workdir, "checkpoints"))
           if n.startswith("ckpt-") and n.endswith(".index") and n[5:-6].isdigit()
           ] if os.path.isdir(os.path.join(workdir, "checkpoints")) else []
  if not exported.startswith("step ") or not steps or max(steps) <= int(exported[5:]):
    return ""
  return (f"{directory} holds the weights of {exported}; {workdir} has checkpoints up to step "
          f"{max(steps)}: to serve newer weights, export again (--mode=export "
          "--export_format=ctranslate2)")


def serves_without_tensorflow(config: Config) -> bool:
  """Whether this run is --engine=ctranslate2 translating lines (translate, or evaluate on
  --input_file) from a CTranslate2 directory that exists: then TensorFlow is never imported."""
  cfg = config.eval
  return (cfg.engine == "ctranslate2" and
          (config.mode == "translate" or (config.mode == "evaluate" and bool(cfg.input_file))) and
          os.path.isdir(default_directory(config)))


def _engine(config: Config, components=None):
  """The Engine on --ctranslate2_dir (default WORKDIR/ctranslate2), exported first if missing."""
  from evaluation.ctranslate2_engine import Engine
  from evaluation.ctranslate2_export import check_exportable
  check_exportable(config)
  if config.eval.output_format != "text":
    raise UserError("--engine=ctranslate2 writes translations only; head predictions "
                    "(--output_format=jsonl) need --engine=tensorflow or the SavedModel export")
  directory = default_directory(config)
  if not os.path.isdir(directory):
    logging.info("no CTranslate2 model in %s: exporting it first (--quantization=%s)",
                 directory, config.eval.quantization)
    export(config, directory, components)
  elif not config.eval.ctranslate2_dir:
    note = stale_export_note(config.workdir, directory)
    if note:
      logging.warning(note)
  return Engine(directory)


def translate_mode(config: Config) -> None:
  """stdin or --input_file -> stdout or --output_file, one translation a line, in order."""
  from evaluation.ctranslate2_engine import translate_lines
  from training.modes import _read_lines
  cfg = config.eval
  engine = _engine(config)
  lines = (_read_lines(cfg.input_file, "--input_file") if cfg.input_file
           else (line.rstrip("\n") for line in sys.stdin))
  total = len(lines) if cfg.input_file else 0
  out = open(cfg.output_file, "w", encoding="utf-8") if cfg.output_file else sys.stdout
  try:
    for _, hyp in translate_lines(engine, lines, cfg, total=total):
      out.write(hyp + "\n")
      out.flush()
  finally:
    if out is not sys.stdout:
      out.close()


def evaluate_split(config: Config, split: str):
  """(hypotheses, references) of `split` translated by CTranslate2; the sources are the id
  rows of the TensorFlow evaluation pipeline, so both engines read the same pieces."""
  from training.modes import components_for_inference
  c = components_for_inference(config)
  engine = _engine(config, c)
  cfg = config.eval
  dataset = c.bundle.eval_dataset(split, cfg.eval_batch_size, cfg.max_eval_examples)
  sources, references = [], []
  for batch in dataset:
    sources += engine.pieces_of_ids(batch["source"].numpy())
    references += [t.decode("utf-8") for t in batch["target_text"].numpy()]
  hypotheses = engine.translate(sources, cfg.beam_size, cfg.length_penalty,
                                cfg.max_decode_length, cfg.eval_batch_size)
  return hypotheses, references


def evaluate_lines(config: Config, sources):
  """Translations of raw `sources` lines by CTranslate2."""
  engine = _engine(config)
  cfg = config.eval
  return engine.translate(engine.encode(sources), cfg.beam_size, cfg.length_penalty,
                          cfg.max_decode_length, cfg.eval_batch_size)


def evaluate_mode(config: Config) -> dict:
  """BLEU/chrF/TER of CTranslate2's translations of --split (or --input_file against
  --reference_file); the hypotheses go to --output_file (default WORKDIR/evaluate.hyp)."""
  from evaluation.scorers import score_corpus
  from training.modes import read_evaluation_files
  from training.workdir import append_metrics, atomic_write_text
  cfg = config.eval
  if cfg.input_file:
    sources, references = read_evaluation_files(cfg)
    hypotheses = evaluate_lines(config, sources)
    metrics = dict(score_corpus(hypotheses, references), input_file=cfg.input_file)
  else:
    hypotheses, references = evaluate_split(config, cfg.split)
    metrics = dict(score_corpus(hypotheses, references), split=cfg.split,
                   examples=len(hypotheses))
  out_path = cfg.output_file or os.path.join(config.workdir, "evaluate.hyp")
  atomic_write_text(out_path, "\n".join(hypotheses) + "\n")
  metrics.update(kind="evaluate", engine="ctranslate2", hypotheses_file=out_path,
                 ctranslate2_dir=default_directory(config))
  append_metrics(config.workdir, metrics)
  return metrics
