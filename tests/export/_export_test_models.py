"""U-Nets with random batch statistics, so that folding matters, for the export tests."""

import keras
import numpy as np

from keras_unet_seg import UNet


def randomize_statistics(model, seed=0):
    """Moving statistics, scales and offsets far from their initial values."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        name = variable.path.rsplit("/", 1)[-1]
        if name in ("moving_mean", "beta"):
            variable.assign(rng.normal(0.0, 0.2, variable.shape))
        elif name in ("moving_variance", "gamma"):
            variable.assign(rng.uniform(0.5, 1.5, variable.shape))


def small_unet(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    model = UNet(base_filters=4, **{"depth": 2, **kwargs})
    model.build((None, None, None, 3))
    randomize_statistics(model, seed)
    return model
