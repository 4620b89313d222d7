"""Data: source, languages, vocabulary, batching."""
from absl import flags

flags.DEFINE_string("dataset", "gettext", "Main (translation) dataset: gettext (English->X from "
                    "this machine's catalogs), parallel_text, tsv, tfds (a prepared TensorFlow "
                    "Datasets translation dataset). See --list_datasets.")
flags.DEFINE_string("data_dir", "", "Directory of the dataset (parallel_text: "
                    "train/val/test*.<lang> files) or file (tsv).")
flags.DEFINE_string("source_lang", "en", "Source language code.")
flags.DEFINE_string("target_lang", "de", "Target language code.")
flags.DEFINE_string("mix", "tsv:0.15", "Extra sources mixed into the training stream: "
                    "'NAME:WEIGHT[:DATA_DIR],...', e.g. 'tsv:0.2' (the embedded Airbnb listings). "
                    "The main dataset has weight 1; '' mixes nothing in.")
flags.DEFINE_integer("vocab_size", 4000, "SentencePiece vocabulary size.")
flags.DEFINE_bool("joint_vocab", True, "One vocabulary for source and target.")
flags.DEFINE_integer("batch_tokens", 2048, "Token budget per training batch.")
flags.DEFINE_enum("length_buckets", "auto", ["auto", "exact", "geometric"], "How training "
                  "batches group examples by length: exact (one bucket per length, least "
                  "padding), geometric (bounds 8, 12, 16, 20, 24, 32, ...: ten batch shapes, for "
                  "XLA) or auto (geometric under --jit_compile, else exact).")
flags.DEFINE_integer("max_length", 64, "Drop (and count) training pairs longer than this in "
                     "subwords.")
flags.DEFINE_integer("tokenizer_sample", 300_000, "Sentences each SentencePiece model trains on: "
                     "a reservoir sample of the training split seeded by --seed (joint "
                     "vocabulary: half from each side); memory grows with it, ~17.5 bytes a "
                     "character (docs/data.md). Accepted: >= 1.")
flags.DEFINE_string("data_cache_dir", "", "Shared cache of prepared data and vocabularies, keyed "
                    "by fingerprint (files, filters, tokenizer settings); '' = "
                    "$XDG_CACHE_HOME/auxseq/data, else ~/.cache/auxseq/data.")
flags.DEFINE_float("subword_alpha", 0.0, "Subword regularisation (Kudo 2018) of training "
                   "sources and targets: sample each segmentation with probability proportional "
                   "to P(segmentation)**alpha, seeded by --seed and the stream position (0 = off; "
                   "e.g. 0.1-0.5). Never on validation, evaluation, translation or aligned pairs.")
flags.DEFINE_integer("subword_nbest", -1, "With --subword_alpha > 0: sample from the whole "
                     "lattice (-1) or from the N best segmentations (N >= 2).")
flags.DEFINE_list("tsv_text_columns", ["name"], "Columns of a tsv source's file that make its "
                  "text: the first (the listing's title) decides the split, each further "
                  "non-empty one is appended after ' · ', e.g. name,room_type,neighbourhood. "
                  "Accepted: column names of the file's header.")
