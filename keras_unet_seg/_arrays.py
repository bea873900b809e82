"""Host arrays: backend tensors, lists and NumPy arrays as NumPy arrays."""

import keras
import numpy as np


def to_numpy(x):
    """`x` as a NumPy array: itself if it is one, a backend tensor converted."""
    if isinstance(x, np.ndarray):
        return x
    if keras.ops.is_tensor(x):
        return keras.ops.convert_to_numpy(x)
    return np.asarray(x)
