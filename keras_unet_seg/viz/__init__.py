"""Looking at segmentations: overlays, prediction grids, training curves.

- `keras_unet_seg.viz.overlays`: masks drawn over images as NumPy arrays
  (`overlay_mask`, `class_color`) and written as PNG files (`save_overlays`);
  they need no matplotlib.
- `keras_unet_seg.viz.figures`: matplotlib figures of predictions
  (`plot_predictions`) and training curves (`plot_history`); matplotlib is
  imported only when a figure is drawn (`pip install "keras-unet-seg[viz]"`).

Every name is importable from `keras_unet_seg.viz` itself.
"""

from keras_unet_seg.viz.figures import plot_history, plot_predictions
from keras_unet_seg.viz.overlays import class_color, overlay_mask, save_overlays

__all__ = ["class_color", "overlay_mask", "plot_history", "plot_predictions", "save_overlays"]
