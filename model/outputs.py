"""Names of the model's outputs (the dict `Seq2Seq.call` returns). Shapes:

  LOGITS            [B, T, V]  float   decoder output logits (float32 under mixed precision)
  ENCODER_OUTPUTS   [B, S, D]  float   top encoder layer
  ENCODER_MASK      [B, S]     float   1.0 on real source tokens, 0.0 on padding
  ENCODER_SUMMARY   [B, D']    float   Transformer: pooled encoder outputs; RNN: final states
  CROSS_ATTENTION   list (one per decoder layer) of [B, H, T, S] float attention probabilities;
                    rows sum to 1 over real source positions and are exactly 0 on padding.
  TARGET_MASK       [B, T]     float   1.0 where target_in != 0 (BOS counts; an all-pad row,
                                       i.e. no translation, is all 0)

Added by the training step, not by the model:
  SECOND_PASS       dict       the outputs above from a second forward pass of the same batch
                               (its own dropout draw); present only when a head declares
                               `second_pass = True` (e.g. rdrop). With training=False the two
                               passes are the same and SECOND_PASS is the first pass's outputs.
"""

LOGITS = "logits"
ENCODER_OUTPUTS = "encoder_outputs"
ENCODER_MASK = "encoder_mask"
ENCODER_SUMMARY = "encoder_summary"
CROSS_ATTENTION = "cross_attention"
TARGET_MASK = "target_mask"
SECOND_PASS = "second_pass"

ALL = (LOGITS, ENCODER_OUTPUTS, ENCODER_MASK, ENCODER_SUMMARY, CROSS_ATTENTION, TARGET_MASK)
# Outputs a head may read whose gradient reaches the encoder (grad_scale applies to these).
ENCODER_SIDE = (ENCODER_OUTPUTS, ENCODER_SUMMARY)
