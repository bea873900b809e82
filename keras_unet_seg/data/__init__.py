"""Input pipeline: folders or arrays of images and masks to `tf.data` batches.

TensorFlow is imported by this subpackage only (the models, layers, losses and metrics
need Keras alone), and only when a dataset or an augmentation is built. Its private
modules, one job each: `_layout` (folder layouts, listing and pairing files),
`_decoding` (headers, EXIF orientation, 16-bit and TIFF readers), `_images` and
`_masks` (a file to a model's input or target), `_checks` (every pair checked before
training) and `_pipeline` (the `tf.data` pipeline behind `SegmentationDataset`).
"""

from keras_unet_seg.data._decoding import (
    IMAGE_EXTENSIONS,  # noqa: F401  (a constant, kept out of __all__ for the API pages)
    InvalidFileError,
    read_header,
)
from keras_unet_seg.data._images import read_image
from keras_unet_seg.data._layout import list_image_files, pair_files
from keras_unet_seg.data._masks import read_mask
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
