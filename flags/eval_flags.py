"""Decoding and evaluation I/O."""
from absl import flags

flags.DEFINE_integer("beam_size", 4, "Beam size (1 = greedy).")
flags.DEFINE_float("length_penalty", 0.6, "GNMT length penalty alpha (0 = none).")
flags.DEFINE_integer("max_decode_length", 128, "Maximum output length in subwords.")
flags.DEFINE_string("split", "test", "Split scored by --mode=evaluate (train, validation, test).")
flags.DEFINE_string("input_file", "", "Source sentences, one a line (evaluate/translate).")
flags.DEFINE_string("output_file", "", "Where translations go (default stdout / WORKDIR).")
flags.DEFINE_string("reference_file", "", "Reference translations for --input_file (evaluate).")
flags.DEFINE_enum("output_format", "text", ["text", "jsonl"], "Translate output: plain text, or "
                  "JSON lines with every head's prediction.")
flags.DEFINE_integer("eval_batch_size", 64, "Sentences per decoding batch.")
flags.DEFINE_integer("max_eval_examples", 0, "Score only the first N examples (0 = all).")
flags.DEFINE_integer("inspect_lines", 8, "Sentences drawn by --mode=inspect (the first N of "
                     "--input_file, else of --split).")
flags.DEFINE_integer("average_last", 0, "Evaluate, translate and export with the average of the "
                     "last N checkpoints of WORKDIR/checkpoints (0 = off; best/latest instead); "
                     "in --mode=train the final test score uses it when N > 1.")
flags.DEFINE_integer("translate_batch_tokens", 4096, "--mode=translate: source tokens per batch "
                     "(sentences sorted by length within windows of 1000 lines; 0 = "
                     "--eval_batch_size sentences per batch).")
flags.DEFINE_enum("export_format", "savedmodel", ["savedmodel", "ctranslate2"], "--mode=export: "
                  "a TensorFlow SavedModel (translations + head predictions; default directory "
                  "WORKDIR/export) or a CTranslate2 model directory for fast translation "
                  "(Transformer only; default WORKDIR/ctranslate2). --output_file names another "
                  "directory.")
flags.DEFINE_enum("quantization", "int8", ["int8", "int8_float32", "float32"], "Weight type of "
                  "the CTranslate2 export (int8 and int8_float32 store int8 weights; float32 "
                  "keeps them as trained).")
flags.DEFINE_enum("engine", "auto", ["auto", "tensorflow", "ctranslate2"], "Decoder of "
                  "--mode=translate and --mode=evaluate: TensorFlow beam search, or CTranslate2 "
                  "on --ctranslate2_dir (exported first when missing; translations only). auto: "
                  "translate uses WORKDIR/ctranslate2 when it holds the workdir's current "
                  "weights (start-up without TensorFlow), else TensorFlow; evaluate uses "
                  "TensorFlow.")
flags.DEFINE_boolean("export_after_training", True, "--mode=train ends by exporting the "
                     "scored weights to WORKDIR/ctranslate2 (Transformer only), which "
                     "--mode=translate then serves without loading TensorFlow.")
flags.DEFINE_string("ctranslate2_dir", "", "CTranslate2 model directory for --engine=ctranslate2 "
                    "(default WORKDIR/ctranslate2).")
