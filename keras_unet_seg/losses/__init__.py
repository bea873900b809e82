"""Overlap losses for segmentation: Dice, Jaccard, Tversky, focal Tversky, BCE + Dice.

Each loss is a pure `keras.ops` function (`dice_loss`, `jaccard_loss`, ...) plus
a thin `keras.losses.Loss` subclass (`DiceLoss`, `JaccardLoss`, ...), so it runs
on the TensorFlow, JAX and PyTorch backends and survives `model.save`; `get`
finds each by name. `CombinedLoss` adds weighted losses (`0.5 * DiceLoss() + ...`).

Conventions shared by every loss here:

- Images `(batch, height, width, C)` or volumes `(batch, depth, height, width,
  C)`: any number of spatial axes, each loss summing over all of them.
- `y_pred` is channels-last. One channel means binary segmentation
  (probabilities, or logits through a sigmoid with `from_logits=True`); more
  than one channel means multi-class (probabilities, or logits through a
  softmax over the channel axis). `y_true` is a 0/1 mask for binary, and
  either one-hot or sparse integer class ids (`(batch, ..., 1)` or
  `(batch, ...)`) for multi-class.
- Everything is computed in float32 whatever the input dtype: a float16 sum of
  a 256x256 mask passes float16's maximum of 65504. The classes return float32
  unless given another `dtype`.
- `smooth` (default `1e-5`) is added to the numerator and the denominator of
  each overlap score. An empty prediction of an empty mask scores 1 and has
  loss 0, with `smooth=0` too: a score whose denominator is 0 is 1 when
  nothing was got wrong, the rule of 0/0 of `keras_unet_seg.metrics` and
  `keras_unet_seg.evaluation` (`keras.losses.Dice` gives that case loss 1).
- `per_image=True` scores each image (or volume) over its spatial axes, then
  averages them; `per_image=False` pools the whole batch into one score.
- In multi-class mode, each class is scored on its own and the class losses
  are averaged (weighted by `class_weights`); `include_background=False`
  leaves channel 0 out of that average, and `ignore_class` leaves out both
  the pixels labelled with it and, when it is a channel, that channel.
- `y_true` and `y_pred` must agree in batch and spatial size (a `ValueError`
  names both shapes; checked where the shapes are known, so always in eager
  mode).
- A NaN prediction or target, or an infinite probability, makes the loss NaN
  (it never scores as perfect, and `keras.callbacks.TerminateOnNaN` sees it).
  Infinite logits are saturated probabilities: logits are clipped to
  `[-1e4, 1e4]`, so the loss stays finite.
- Targets the labels cannot hold (outside [0, 1], such as a 0/255 mask, or
  class ids outside `[0, C)` other than `ignore_class`) raise a `ValueError`
  where their values are known: in eager execution, and so in PyTorch's `fit`.
  Inside a traced graph (`tf.function`, `jax.jit`: TensorFlow's and JAX's
  `fit`) no error can be raised from a value, so they make the loss NaN, never
  a wrong number. `SegmentationDataset` checks every mask when it is built.
- An empty batch (no image) has loss 0, as Keras' own losses give.
"""

from keras_unet_seg.losses._classes import (
    BCEDiceLoss,
    DiceLoss,
    FocalTverskyLoss,
    JaccardLoss,
    TverskyLoss,
)
from keras_unet_seg.losses._combined import CombinedLoss, get
from keras_unet_seg.losses._functions import (
    bce_dice_loss,
    dice_loss,
    focal_tversky_loss,
    jaccard_loss,
    tversky_loss,
)

__all__ = [
    "BCEDiceLoss",
    "CombinedLoss",
    "DiceLoss",
    "FocalTverskyLoss",
    "JaccardLoss",
    "TverskyLoss",
    "bce_dice_loss",
    "dice_loss",
    "focal_tversky_loss",
    "get",
    "jaccard_loss",
    "tversky_loss",
]
