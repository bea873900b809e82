"""The subcommands of `keras-unet-seg`, one module each (see `keras_unet_seg.cli`)."""

from keras_unet_seg.commands import demo, evaluate, export, predict, train

COMMANDS = (demo, train, predict, evaluate, export)
