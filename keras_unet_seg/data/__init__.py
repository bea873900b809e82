"""Input pipeline: folders or arrays of images and masks, or volumes, to `tf.data` batches.

TensorFlow is imported by this subpackage only (the models, layers, losses and metrics
need Keras alone), and only when a dataset or an augmentation is built. Its private
modules, one job each: `_layout` (folder layouts, listing and pairing files),
`_decoding` (headers, EXIF orientation, 16-bit and TIFF readers), `_images` and
`_masks` (a file to a model's input or target), `_checks` (every pair checked before
training), `_options` (the constructors' arguments checked), `_pipeline` (the
`tf.data` pipeline behind `SegmentationDataset`), and for volumes `volumes` (NIfTI
and TIFF stacks read and written), `_patches` (patches and 3D augmentation in NumPy)
and `_volume_pipeline` (the patches' `tf.data` pipeline).
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
from keras_unet_seg.data.intensity import intensity_spec, normalize_image, normalize_volume
from keras_unet_seg.data.synthetic import make_synthetic_dataset, make_synthetic_volumes
from keras_unet_seg.data.volumes import Volume, read_volume, volume_stem, write_volume

__all__ = [
    "InvalidFileError",
    "JointAugmentation",
    "SegmentationDataset",
    "Volume",
    "intensity_spec",
    "list_image_files",
    "make_synthetic_dataset",
    "make_synthetic_volumes",
    "normalize_image",
    "normalize_volume",
    "pair_files",
    "read_header",
    "read_image",
    "read_mask",
    "read_volume",
    "volume_stem",
    "write_volume",
]
