"""Every command-line flag, and the single flags -> Config conversion.

Flags are defined in one module per topic so that `--helpfull` groups them. Precedence:
dataclass defaults (the default job) < `--preset` < flags given explicitly on the command line.
"""
import dataclasses

from absl import flags

from configs import presets
from configs.config import Config
from configs.errors import UserError
from configs.parsing import parse_heads_spec, parse_mix
from flags import data_flags, eval_flags, head_flags, model_flags, run_flags, train_flags  # noqa: F401
from flags import validation

FLAGS = flags.FLAGS

# flag name -> Config section it sets (field name = flag name).
_SECTIONS = {
    "model": ("model", "d_model", "num_layers", "num_heads", "ffn_dim", "dropout",
              "tie_embeddings", "summary", "rnn_cell"),
    "data": ("source_lang", "target_lang", "vocab_size", "joint_vocab", "batch_tokens",
             "length_buckets", "max_length", "tokenizer_sample", "data_cache_dir", "subword_alpha",
             "subword_nbest", "tsv_text_columns"),
    "train": ("train_steps", "learning_rate", "warmup_steps", "lr_schedule", "clip_norm", "seed",
              "deterministic", "combiner", "precision", "jit_compile", "on_nonfinite",
              "checkpoint_every", "keep_checkpoints",
              "eval_every", "select_metric", "log_every", "max_minutes", "early_stop_patience",
              "lr_control", "lr_decay", "accum_steps", "distribute",
              "log_grad_stats_every", "schedule", "alternate_ratio", "ema_decay", "init_from",
              "main_task", "balance_relax", "balance_strategy", "balance_target",
              "clip_per_term", "gradient_space", "fold_regularisers",
              "fold_refresh_every"),
    "eval": ("beam_size", "length_penalty", "max_decode_length", "split", "input_file",
             "output_file", "reference_file", "output_format", "eval_batch_size",
             "max_eval_examples", "inspect_lines", "average_last", "translate_batch_tokens",
             "export_format", "quantization", "engine", "ctranslate2_dir",
             "export_after_training"),
}


def _given(name: str) -> bool:
  return FLAGS[name].present > 0


def given_flags() -> frozenset:
  """The names of the flags given on this command line."""
  return frozenset(name for name in FLAGS if _given(name))


def config_from_flags() -> Config:
  """The Config for this command line (preset first, then explicitly given flags)."""
  try:
    config = presets.get_preset(FLAGS.preset)() if FLAGS.preset else Config()
  except UserError as e:
    raise UserError(f"--preset={FLAGS.preset}: {e}") from None
  updates = {"mode": FLAGS.mode, "workdir": FLAGS.workdir, "overwrite": FLAGS.overwrite}
  for section, names in _SECTIONS.items():
    given = {n: tuple(FLAGS[n].value) if isinstance(FLAGS[n].value, list) else FLAGS[n].value
             for n in names if _given(n)}  # list flags become tuples, as the dataclasses hold
    if given:
      updates[section] = dataclasses.replace(getattr(config, section), **given)
  data = updates.get("data", config.data)
  sources = list(data.sources)
  if _given("dataset"):
    sources[0] = dataclasses.replace(sources[0], dataset=FLAGS.dataset, data_dir=FLAGS.data_dir)
  elif _given("data_dir"):  # keeps the preset's dataset (e.g. multi30k_transformer)
    sources[0] = dataclasses.replace(sources[0], data_dir=FLAGS.data_dir)
  if _given("mix"):
    sources = sources[:1] + list(parse_mix(FLAGS.mix))
  updates["data"] = dataclasses.replace(data, sources=tuple(sources))
  if _given("heads"):
    updates["heads"] = parse_heads_spec(FLAGS.heads)
  if _given("head_modules"):
    updates["head_modules"] = tuple(FLAGS.head_modules)
  config = _default_job_extras(dataclasses.replace(config, **updates))
  values = {n: getattr(getattr(config, section), n)
            for section, names in _SECTIONS.items() for n in names}
  validation.validate(config, values, _given, FLAGS.preset)
  return config


# The listings mix and the default heads belong to the default job (the embedded gettext data):
# on any other main dataset they apply only when named (--heads / --mix, or by a preset).
_DEFAULT_JOB = Config()


def _default_job_extras(config: Config) -> Config:
  if config.data.sources[0].dataset == _DEFAULT_JOB.data.sources[0].dataset:
    return config
  if not _given("heads") and config.heads == _DEFAULT_JOB.heads:
    config = dataclasses.replace(config, heads=())
  if not _given("mix") and config.data.sources[1:] == _DEFAULT_JOB.data.sources[1:]:
    config = dataclasses.replace(config, data=dataclasses.replace(
        config.data, sources=config.data.sources[:1]))
  return config


def config_from_argv(argv) -> Config:
  """main.py's flags parsed from `argv` (argv[0] is the program) into a Config, for tools that
  take main.py's flags after their own; a bad flag is a UserError."""
  try:
    FLAGS(list(argv))
  except flags.Error as e:
    raise UserError(str(e)) from None
  return config_from_flags()
