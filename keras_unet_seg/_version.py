"""The package's version, read by the build (`pyproject.toml`) and by `keras_unet_seg`."""

__version__ = "0.1.0.dev0"
