"""Training: callbacks for any `model.fit`, and a run folder trained from a config.

Callbacks that work in any `model.fit`:

- `RunCheckpoint`: the run's backups, written whole and checksummed at each
  epoch's end, with the log and the best model; `fit` resumes from the newest
  complete one after any interruption (a drop-in for
  `keras.callbacks.BackupAndRestore`).
- `LearningRateSchedule`: the rate of each epoch through warm-up, cosine or
  plateau and the factor after a pretrained encoder unfreezes, one function of
  the epoch (`learning_rate`), so a resumed run trains as an uninterrupted one.
- `UnfreezeEncoder` (with `freeze_encoder`): a pretrained encoder frozen for
  the first epochs, then trained.
- `TerminateOnNonFinite`: stops at the first NaN or infinite loss, raising
  `NonFiniteLoss`.

`TrainingConfig` holds a run's options, checked once, and round-trips through
JSON; `train_run(config, out)` trains the run folder `out` from it, as the
`keras-unet-seg train` command does, and returns a `TrainingResult`.
"""

from keras_unet_seg.training._errors import TrainingError
from keras_unet_seg.training.callbacks import (
    NonFiniteLoss,
    RunCheckpoint,
    TerminateOnNonFinite,
    UnfreezeEncoder,
    freeze_encoder,
)
from keras_unet_seg.training.config import TrainingConfig
from keras_unet_seg.training.run import TrainingResult, train_run
from keras_unet_seg.training.schedule import LearningRateSchedule, learning_rate

__all__ = [
    "LearningRateSchedule",
    "NonFiniteLoss",
    "RunCheckpoint",
    "TerminateOnNonFinite",
    "TrainingConfig",
    "TrainingError",
    "TrainingResult",
    "UnfreezeEncoder",
    "freeze_encoder",
    "learning_rate",
    "train_run",
]
