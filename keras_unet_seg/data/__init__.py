"""Input pipeline: folders or arrays of images and masks to `tf.data` batches.

TensorFlow is imported by this subpackage only (the models, layers, losses and metrics
need Keras alone), and only when a dataset or an augmentation is built.
"""

from keras_unet_seg.data._io import InvalidFileError, read_image
from keras_unet_seg.data.augment import JointAugmentation
from keras_unet_seg.data.dataset import SegmentationDataset
from keras_unet_seg.data.intensity import intensity_spec, normalize_image
from keras_unet_seg.data.synthetic import make_synthetic_dataset

__all__ = [
    "InvalidFileError",
    "JointAugmentation",
    "SegmentationDataset",
    "intensity_spec",
    "make_synthetic_dataset",
    "normalize_image",
    "read_image",
]
