"""Inference on images and volumes of any size: arrays tile by tile, then files.

`predict_tiled` predicts arrays; `predict_directory` reads image files, predicts them
with it, and writes masks and overlays; `InferenceSpec` holds what a trained model
is run with, from training to prediction and export.

How `predict_tiled` tiles an image:

- The tiles' starts are spread evenly between the top-left corner and the
  last position that aligns with the bottom or right border, so every pixel
  is covered, the last tile ends exactly at the border, and neighbouring
  tiles overlap by at least `overlap`.
- A side shorter than the tile is given to the model as it is (the tile
  shrinks to it) when the model takes inputs of any size, as a `UNet` does
  (it pads to a multiple of `2**depth` itself), so an image that fits in one
  tile is predicted exactly as `model.predict` would; for a model with a
  fixed input size it is padded up to the tile (with `padding_mode`) and the
  padding is cropped from the result.
- Tiles go through the model in batches of `batch_size` (with
  `model.predict_on_batch`, which runs without gradients and is compiled on
  every backend; a plain callable is called instead). The last batch is
  filled up to the batch size, so the model always sees the same input shape
  (no retracing or recompilation between batches).
- The predictions of overlapping tiles are blended with a weight map (a
  Gaussian centred on the tile by default, MONAI's convention: overlap 0.25,
  sigma = 0.125 x tile size) accumulated and normalised by the sum of the
  weights, so no seams show.
- With a `scale` (a run's training scale, as `keras-unet-seg predict` uses;
  `InferenceSpec.tiled_arguments()` gives it), the image is resized by it
  first (bilinear, half-pixel centres, no antialiasing, in float32, before
  `preprocess`) and the probabilities back to its size.
- Memory stays bounded: the model sees at most `batch_size` tiles at a time
  (times one pass per flip with `tta`); besides the image, only the output
  (of the padded image's size) is kept on the host: the weights' sum is the
  outer product of two vectors, the tiles forming a grid. An `overlap`
  that would predict each pixel more than 100 times as often as tiles
  without overlap is refused rather than run for hours.

Volumes go the same way along three axes (sliding-window inference): a model built
on `(batch, depth, height, width, channels)` gets 3D tiles (patches), blended with
the product of one Gaussian an axis, and the weights' sum is the outer product of
three vectors; flips for `tta` stay in plane (height and width).

The numeric work here is host-side orchestration and is written in NumPy on
purpose: the image and the output live in host memory, tiles are cut with
slicing, and overlapping predictions are accumulated in place
(`acc[y:y + h, x:x + w] += ...`), which NumPy does without copies while
`keras.ops` tensors are immutable on the JAX and TensorFlow backends. A
2048x2048 image never has to fit on the accelerator: only one batch of tiles
at a time goes through the model.
"""

from keras_unet_seg.inference._files import predict_directory
from keras_unet_seg.inference._spec import InferenceSpec
from keras_unet_seg.inference._tiles import minimum_tile_size, predict_tiled

__all__ = ["InferenceSpec", "minimum_tile_size", "predict_directory", "predict_tiled"]
