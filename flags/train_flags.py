"""Training: steps, optimisation, seeds, precision, loss combination."""
from absl import flags

flags.DEFINE_integer("train_steps", 1500, "Optimizer steps in total (a rerun resumes to this).")
flags.DEFINE_float("learning_rate", 2e-3, "Peak learning rate.")
flags.DEFINE_integer("warmup_steps", 300, "Linear warm-up steps before --lr_schedule's decay.")
flags.DEFINE_enum("lr_schedule", "inverse_sqrt", ["inverse_sqrt", "linear", "linear_time"],
                  "Decay after the warm-up: inverse_sqrt = peak * sqrt(warmup / step), no end; "
                  "linear = linearly to 0 at --train_steps (for runs whose length is known); "
                  "linear_time = linearly to 0 at the --max_minutes deadline, the end step "
                  "re-estimated from the measured step time at every checkpoint (at most "
                  "--train_steps).")
flags.DEFINE_float("clip_norm", 1.0, "Global-norm clip of the combined gradient (0 = off).")
flags.DEFINE_integer("seed", 1234, "Global seed; initial weights derive from (seed, component).")
flags.DEFINE_bool("deterministic", False, "TF op determinism and a fixed data order.")
flags.DEFINE_string("combiner", "metabalance", "How losses are combined: fixed, uncertainty, "
                    "dwa, rlw, famo (loss-based); gradnorm, pcgrad, mgda_ub, metabalance, "
                    "task_moments, gcs, bloop (per-term gradients; docs/balancing.md). The "
                    "default, metabalance with --balance_strategy=shrink --balance_relax=1 "
                    "--balance_target=0.3 --clip_per_term, caps the auxiliary heads' summed "
                    "gradient on each shared tensor at 0.3x translation's.")
flags.DEFINE_enum("precision", "auto", ["auto", "float32", "mixed_bfloat16", "mixed_float16"],
                  "Compute precision (mixed_float16 uses loss scaling). auto: mixed_bfloat16 "
                  "where bfloat16 is native (CPUs with AVX512-BF16 or AMX, GPUs of compute "
                  "capability >= 8.0), mixed_float16 on older GPUs, float32 on other CPUs (there "
                  "bfloat16 trained 5x slower).")
flags.DEFINE_bool("jit_compile", False, "XLA-compile the train step; batches are then padded to "
                  "their length bucket (one compile per bucket shape). Off by default: slower "
                  "on this CPU kind (docs/results.md).")
flags.DEFINE_enum("on_nonfinite", "stop", ["stop", "skip"], "On a non-finite loss: stop and "
                  "name the term, or skip the step.")
flags.DEFINE_integer("accum_steps", 1, "Micro-batches per optimizer step (exact global "
                     "normalisation of every loss; every combiner except gradient combiners at "
                     "--gradient_space=boundary).")
flags.DEFINE_enum("distribute", "none", ["none", "mirrored", "multi_worker"], "tf.distribute: "
                  "mirrored = MirroredStrategy over local GPUs (or logical CPUs); multi_worker = "
                  "MultiWorkerMirroredStrategy configured by the TF_CONFIG variable.")
flags.DEFINE_integer("log_grad_stats_every", 0, "Every N steps log per-loss gradient norms and "
                     "pairwise cosines at the encoder boundary (0 = never).")
flags.DEFINE_enum("schedule", "joint", ["joint", "alternating", "two_optimizers"], "joint: all "
                  "losses in one step. alternating / two_optimizers: baselines for comparison.")
flags.DEFINE_integer("alternate_ratio", 10, "Translation steps per auxiliary step when "
                     "--schedule=alternating.")
flags.DEFINE_float("ema_decay", 0.0, "Exponential moving average of the weights, used for every "
                   "evaluation and for translate/export (e.g. 0.999; 0 = off).")
flags.DEFINE_string("init_from", "", "Warm start: WORKDIR[@STEP] of a trained run whose model "
                    "and shared heads' weights and vocabulary a new run starts from (fresh "
                    "optimizer and schedule; new heads freshly initialised). Default checkpoint: "
                    "the source run's last one.")
flags.DEFINE_string("main_task", "translation", "The loss term that metabalance, "
                    "task_moments, gcs and bloop balance the others towards, and that pcgrad "
                    "never projects (any term name, e.g. translation or price).")
flags.DEFINE_float("balance_relax", 1.0, "Relax factor r in [0, 1] of metabalance and "
                   "task_moments: 0 = plain weighted sum, 1 = every auxiliary gradient at the "
                   "target magnitude (He et al. 2022 use 0.7 by default).")
flags.DEFINE_enum("balance_strategy", "shrink", ["both", "shrink", "enlarge"], "Which "
                  "auxiliary gradients metabalance and task_moments rescale towards the target "
                  "(He et al. 2022, strategies A-C): shrink = only those larger than it, "
                  "enlarge = only smaller ones, both = all.")
flags.DEFINE_float("balance_target", 0.3, "Target magnitude of metabalance and task_moments, "
                   "as a fraction of the main task's gradient magnitude (1 = the paper's).")
flags.DEFINE_bool("clip_per_term", True, "Where the step takes per-term gradients anyway "
                  "(gradient combiners over the weights, two or more terms), clip each term's "
                  "weighted gradient to --clip_norm before the terms are combined instead of one "
                  "clip of the sum, so one term's norm cannot shrink another's update; "
                  "elsewhere the global clip.")
flags.DEFINE_enum("gradient_space", "weights", ["weights", "boundary"], "Where gradient "
                  "combiners take per-term gradients: over the shared weights (terms on "
                  "different rows meet) or at the encoder outputs (cheaper, blind to them).")
flags.DEFINE_bool("fold_regularisers", True, "With metabalance's shrink cap, translation's "
                  "regularisers (heads reading its logits or cross-attention, e.g. "
                  "attention_entropy) join translation's backward, capped against translation "
                  "alone (--fold_refresh_every), instead of sharing the other auxiliaries' cap: "
                  "one backward instead of two (1.04x instead of 1.28x translation's step on "
                  "multi30k_transformer_heads), and a stronger regulariser for its weight.")
flags.DEFINE_integer("fold_refresh_every", 10, "With --fold_regularisers: every N steps take "
                     "translation's and its regularisers' gradients separately and scale the "
                     "regularisers by the least-squares scalar of the shrink cap until the next "
                     "refresh (one backward between refreshes); 0 = fold at fixed weights.")
