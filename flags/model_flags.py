"""Model architecture."""
from absl import flags

flags.DEFINE_enum("model", "transformer", ["transformer", "rnn"], "Architecture.")
flags.DEFINE_integer("d_model", 128, "Embedding / hidden width.")
flags.DEFINE_integer("num_layers", 2, "Encoder and decoder layers (each).")
flags.DEFINE_integer("num_heads", 4, "Attention heads (Transformer).")
flags.DEFINE_integer("ffn_dim", 512, "Feed-forward inner width (Transformer).")
flags.DEFINE_float("dropout", 0.1, "Dropout rate.")
flags.DEFINE_bool("tie_embeddings", True, "Share source/target embeddings and output projection.")
flags.DEFINE_enum("summary", "mean", ["mean", "max", "first", "attention"],
                  "How the Transformer pools encoder_summary.")
flags.DEFINE_enum("rnn_cell", "lstm", ["lstm", "gru"], "RNN cell type.")
