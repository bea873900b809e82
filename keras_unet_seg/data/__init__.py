"""Input pipeline: folders or arrays of images and masks to `tf.data` batches.

TensorFlow is imported by this subpackage only (the models, layers, losses and metrics
need Keras alone), and only when a dataset or an augmentation is built.
"""

from keras_unet_seg.data._io import (
    IMAGE_EXTENSIONS,  # noqa: F401  (a constant, kept out of __all__ for the API pages)
    InvalidFileError,
    list_image_files,
    pair_files,
    read_header,
    read_image,
    read_mask,
)
from keras_unet_seg.data.augment import JointAugmentation
from keras_unet_seg.data.dataset import SegmentationDataset
from keras_unet_seg.data.intensity import intensity_spec, normalize_image
from keras_unet_seg.data.synthetic import make_synthetic_dataset

__all__ = [
    "InvalidFileError",
    "JointAugmentation",
    "SegmentationDataset",
    "intensity_spec",
    "list_image_files",
    "make_synthetic_dataset",
    "normalize_image",
    "pair_files",
    "read_header",
    "read_image",
    "read_mask",
]
