"""Auxiliary heads."""
from absl import flags

flags.DEFINE_string("heads", "price;domain;attention_entropy", "Auxiliary heads and options: "
                    "'price:weight=0.3,buckets=5;attention_entropy:layers=all'. translation is "
                    "always on; '' trains translation alone. See --list_heads.")
flags.DEFINE_list("head_modules", [], "Python files or modules that register your own heads.")
