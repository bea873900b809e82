"""Tests of `keras_unet_seg.commands`, one file a command module (a package, so that
`test_reading.py` and `test_export.py` do not clash with the library's tests)."""
