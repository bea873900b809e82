"""keras-unet-seg: composable U-Net semantic segmentation for Keras 3."""

from keras_unet_seg import encoders, losses, metrics
from keras_unet_seg._version import __version__ as __version__
from keras_unet_seg.data import JointAugmentation, SegmentationDataset, make_synthetic_dataset
from keras_unet_seg.inference import InferenceSpec, predict_tiled
from keras_unet_seg.layers import (
    AttentionDecoderStage,
    ConvBlock,
    DecoderStage,
    EncoderStage,
    NestedDecoder,
    UNetDecoder,
)
from keras_unet_seg.losses import (
    BCEDiceLoss,
    CombinedLoss,
    DiceLoss,
    FocalTverskyLoss,
    JaccardLoss,
    TverskyLoss,
)
from keras_unet_seg.metrics import DiceCoefficient, IoUScore, Precision, Recall
from keras_unet_seg.models import UNet, UNetPlusPlus
from keras_unet_seg.viz import overlay_mask, plot_history, plot_predictions, save_overlays

__all__ = [
    "AttentionDecoderStage",
    "BCEDiceLoss",
    "CombinedLoss",
    "ConvBlock",
    "DecoderStage",
    "DiceCoefficient",
    "DiceLoss",
    "EncoderStage",
    "FocalTverskyLoss",
    "InferenceSpec",
    "IoUScore",
    "JaccardLoss",
    "JointAugmentation",
    "NestedDecoder",
    "Precision",
    "Recall",
    "SegmentationDataset",
    "TverskyLoss",
    "UNet",
    "UNetDecoder",
    "UNetPlusPlus",
    "encoders",
    "losses",
    "make_synthetic_dataset",
    "metrics",
    "overlay_mask",
    "plot_history",
    "plot_predictions",
    "predict_tiled",
    "save_overlays",
]
