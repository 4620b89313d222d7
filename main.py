"""auxseq: train a seq2seq model with auxiliary heads in one optimizer step, then score it.

  python main.py                      # the default job: gettext en->de, ~10 minutes on 2 cores
  python main.py --helpfull           # every flag, grouped by topic
"""
import sys

from absl import app, flags

import flags as app_flags
from configs.errors import UserError


def _parse(argv):
  """absl's parser, but a bad flag is a one-line `error:` with exit status 2."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.stderr.write(f"error: {e}\n")
    sys.exit(2)


def main(argv):
  try:
    if len(argv) > 1:
      raise UserError(f"unexpected arguments {' '.join(argv[1:])!r}; every option is a --flag")
    config = app_flags.config_from_flags()  # every flag validated here, before TensorFlow loads
    if app_flags.FLAGS.list_presets:
      from configs import presets
      return print(presets.describe_presets())
    from training.workdir import inference_config
    config = inference_config(config, app_flags.given_flags())  # restore what WORKDIR trained
    from training.modes import needs_tensorflow, run_mode
    listing = app_flags.FLAGS.list_datasets or app_flags.FLAGS.list_heads
    if not listing and not needs_tensorflow(config):  # --engine=ctranslate2, export exists
      return run_mode(config)
    from training.native_logs import load_tensorflow
    load_tensorflow()
    import data
    from heads import spec
    from training import preflight
    if app_flags.FLAGS.list_datasets:
      return print("\n".join(f"{k}: {v}" for k, v in data.list_sources().items()))
    if app_flags.FLAGS.list_heads:
      spec.import_head_modules(config.head_modules)
      return print(spec.describe_heads())
    preflight.check_registered(config)  # names and combinations, before any data is read
    run_mode(config)
  except UserError as e:
    sys.stderr.write(f"error: {e}\n")
    sys.exit(2)


if __name__ == "__main__":
  app.run(main, flags_parser=_parse)
