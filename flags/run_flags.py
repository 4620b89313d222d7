"""Run control: mode, workdir, presets, listing what is registered."""
from absl import flags

MODES = ("train", "evaluate", "translate", "export", "diagnose", "inspect")

flags.DEFINE_enum("mode", "train", MODES, "What to do: train (then score the test split), "
                  "evaluate, translate, export, diagnose, inspect.")
flags.DEFINE_string("workdir", "workdir", "Checkpoints, vocabulary, config.json, metrics.jsonl "
                    "and TensorBoard events; rerunning the same command resumes.")
flags.DEFINE_string("preset", "", "Named configuration (see --list_presets); flags given "
                    "explicitly override it.")
flags.DEFINE_bool("overwrite", False, "Start afresh in a workdir that holds an incompatible run.")
flags.DEFINE_integer("checkpoint_every", 100, "Save a checkpoint every N steps.")
flags.DEFINE_integer("keep_checkpoints", 5, "Regular checkpoints kept (the newest N); "
                     "--average_last can average at most this many.")
flags.DEFINE_integer("eval_every", 0, "Score the validation split every N steps (0 = never); "
                     "the best checkpoint by --select_metric is kept in WORKDIR/best.")
flags.DEFINE_string("select_metric", "bleu", "Validation metric that picks the best checkpoint, "
                    "e.g. bleu, chrf, ter, price/accuracy (direction comes from the metric).")
flags.DEFINE_integer("early_stop_patience", 0, "Stop after N validations without improvement of "
                     "--select_metric (0 = never).")
flags.DEFINE_enum("lr_control", "none", ["none", "plateau", "newbob"], "Lower the learning rate "
                  "from --select_metric: plateau (after a validation without improvement) or "
                  "newbob (every validation once improvement falls below 1%).")
flags.DEFINE_float("lr_decay", 0.5, "Factor applied to the learning rate by --lr_control.")
flags.DEFINE_integer("log_every", 50, "Log a progress line and TensorBoard scalars every N steps.")
flags.DEFINE_float("max_minutes", 0.0, "Stop training after this many minutes (0 = no limit).")
flags.DEFINE_bool("list_presets", False, "Print the named presets and exit.")
flags.DEFINE_bool("list_datasets", False, "Print the registered datasets and exit.")
flags.DEFINE_bool("list_heads", False, "Print every registered head with its options and exit.")
