"""Every built-in data source; importing this module registers them all.

  gettext        English->X UI strings of this machine's gettext catalogs (the embedded default)
  parallel_text  DATA_DIR/{train,val,test*}.<lang> line-aligned files (e.g. Multi30k as it is),
                 with optional Pharaoh word alignments DATA_DIR/<split>[.<src>-<tgt>].align
  tsv            text + price columns, no translation (default: the embedded Berlin listings)
  tfds           a translation dataset prepared by TensorFlow Datasets (e.g. wmt14_translate)
"""
from data.registry import (SPLITS, Example, Splits, example, get_reader, hash_split,  # noqa: F401
                           list_sources, register_source)
from data.gettext_source import DEFAULT_LOCALE_ROOT, clean_pair, read_gettext  # noqa: F401
from data.text_files import (EMBEDDED_TSV, parse_alignment, parse_price,  # noqa: F401
                             read_parallel_text, read_tsv)
from data.tfds_source import read_tfds  # noqa: F401
