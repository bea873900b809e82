"""Deployment: batch-normalization folding, export to ONNX / LiteRT / SavedModel / OpenVINO.

- `keras_unet_seg.export.folding`: `fold_batch_normalization` returns an
  inference-only copy of a model with each batch normalization that follows
  a convolution folded into it.
- `keras_unet_seg.export.exporting`: `export_model` writes a (folded) model
  with Keras' own exporters, checks the written file in its runtime against
  the Keras model, and writes beside it a JSON file with what a consumer
  needs to reproduce `keras-unet-seg predict`; with `quantize="int8"`, a
  statically quantized model, calibrated on images read as `predict` reads
  them and checked on the validation Dice.
- `keras_unet_seg.export.runtimes`: `load_exported` runs an exported file in
  its own runtime, as an `ExportedModel` that `predict_tiled` and the
  prediction and evaluation functions take like a Keras model.

Every name is importable from `keras_unet_seg.export` itself.
"""

from keras_unet_seg.export.exporting import export_model
from keras_unet_seg.export.folding import fold_batch_normalization
from keras_unet_seg.export.runtimes import EXPORT_FORMATS as EXPORT_FORMATS
from keras_unet_seg.export.runtimes import ExportedModel, load_exported

__all__ = ["ExportedModel", "export_model", "fold_batch_normalization", "load_exported"]
