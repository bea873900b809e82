"""Training with the library's parts in any `model.fit`: the learning-rate schedule.

`learning_rate(epoch, ...)` gives the rate of each epoch as one function of the
epoch and the options (warm-up, cosine or plateau, the factor after a pretrained
encoder unfreezes), and the `LearningRateSchedule` callback sets it, so that a
resumed run trains each epoch at the rate an uninterrupted one would have.
"""

from keras_unet_seg.training.schedule import LearningRateSchedule, learning_rate

__all__ = ["LearningRateSchedule", "learning_rate"]
