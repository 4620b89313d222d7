"""Configuration dataclasses, presets and the user-error type."""
from configs.config import (Config, DataConfig, DataSourceConfig, EvalConfig, HeadSpec,
                            ModelConfig, TrainConfig, to_dict)
from configs.errors import UserError
