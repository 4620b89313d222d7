"""Token ids every vocabulary reserves (SentencePiece is trained with them; DESIGN.md: padding is
0). One definition for the tokenizer, the decoder and the exports."""
PAD, UNK, BOS, EOS = 0, 1, 2, 3
