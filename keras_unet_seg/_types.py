"""The options' types: each accepts a command-line string or a config-file value.

They raise `argparse.ArgumentTypeError` ("expected ..., got ..."), which the parser
words as argparse does and `_config.config_defaults` words for a config file.
"""

import argparse
import math


def fail(expected, value):
    """Raises the `argparse.ArgumentTypeError` "expected ..., got ..."."""
    raise argparse.ArgumentTypeError(f"expected {expected}, got {value!r}")


def _parse(value, parse, expected):
    """`parse(value)` for a command-line string; a config value is checked as it is."""
    if isinstance(value, str):
        try:
            return parse(value)
        except ValueError:
            fail(expected, value)
    return value


def _integer(value, expected, minimum):
    number = _parse(value, int, expected)
    if isinstance(number, bool) or not isinstance(number, int) or number < minimum:
        fail(expected, value)
    return number


def positive_int(value):
    return _integer(value, "a positive integer", 1)


def non_negative_int(value):
    return _integer(value, "an integer >= 0", 0)


def _float(value, expected, accept):
    number = _parse(value, float, expected)
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not accept(number):
        fail(expected, value)
    return float(number)


def positive_float(value):
    return _float(value, "a positive number", lambda x: 0 < x < float("inf"))


def finite_float(value):
    return _float(value, "a finite number", math.isfinite)


def fraction(value):
    """A float in [0, 1)."""
    return _float(value, "a number in [0, 1)", lambda x: 0 <= x < 1)


def probability(value):
    """A float in [0, 1]."""
    return _float(value, "a number in [0, 1]", lambda x: 0 <= x <= 1)


def _pair(value):
    """`"64x48"`, `"64,48"` or `"64"` split into its parts; other values as they are."""
    if isinstance(value, str):
        return value.lower().replace(",", "x").split("x")
    return list(value) if isinstance(value, (list, tuple)) else [value]


def image_size(value):
    """`64`, `"64"`, `"64x48"`, `"64,48"` or `[64, 48]` to a `(height, width)` tuple, of
    at most `PIL.Image.MAX_IMAGE_PIXELS` pixels (the limit of the files read)."""
    expected = "a size N or HxW (positive integers)"
    parts = _pair(value)
    if isinstance(value, str):
        try:
            parts = [int(p) for p in parts]
        except ValueError:
            fail(expected, value)
    if len(parts) == 1 and not isinstance(value, (list, tuple)):
        parts = parts * 2
    if len(parts) != 2 or not all(
        isinstance(p, int) and not isinstance(p, bool) and p >= 1 for p in parts
    ):
        fail(expected, value)
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and parts[0] * parts[1] > limit:
        fail(f"a size of at most {limit:,} pixels (PIL.Image.MAX_IMAGE_PIXELS)", value)
    return tuple(parts)


def tile_size(value):
    """`image_size`, or `"DxHxW"` (`"D,H,W"`, `[D, H, W]`) to a `(depth, height, width)`
    tuple of positive integers: a volume's tile."""
    parts = _pair(value)
    if len(parts) != 3:
        return image_size(value)
    try:
        sides = tuple(int(p) for p in parts if not isinstance(p, (bool, float)))
    except (TypeError, ValueError):
        sides = ()
    if len(sides) != 3 or min(sides) < 1:
        fail("a size N, HxW or DxHxW (positive integers)", value)
    return sides


def positive_pair(value, expected="a positive number N or a pair NHxNW"):
    """`0.5`, `"0.5x0.25"`, `"0.5,0.25"` or `[0.5, 0.25]` to a `(height, width)` pair."""
    parts = _pair(value)
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2:
        fail(expected, value)
    try:
        return tuple(positive_float(part) for part in parts)
    except argparse.ArgumentTypeError:
        fail(expected, value)


positive_pair.__name__ = "pair"


def spacing(value):
    """`positive_pair`, or `"SZxSYxSX"` (`[z, y, x]`) to a volume's `(z, y, x)` spacing."""
    parts = _pair(value)
    if len(parts) != 3:
        return positive_pair(value, "a positive number S, SHxSW or SZxSYxSX")
    try:
        return tuple(positive_float(part) for part in parts)
    except argparse.ArgumentTypeError:
        fail("a positive number S, SHxSW or SZxSYxSX", value)


def scale_choice(value):
    """`auto` (the run's training scale), `native` (1), or a factor `F` or `FHxFW`."""
    if isinstance(value, str) and value.lower() in ("auto", "native"):
        return value.lower()
    return positive_pair(value, "auto, native, or a factor F or FHxFW")


scale_choice.__name__ = "scale"


def _named_spec(value):
    """A name, or a config-file dict `{"name": ..., <arguments>}` of a loss or metric."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return dict(value)
    fail('a name, or in a config file a dict such as {"name": "tversky", "alpha": 0.3}', value)


def loss_spec(value):
    """`--loss`: a name, or in a config file `{"name": ..., <arguments>}`."""
    return _named_spec(value)


loss_spec.__name__ = "loss"


def _names(value):
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)):
        fail("a comma-separated list of names", value)
    return list(value)


def metric_list(value):
    """`"dice,iou"`, or in a config file a list of names and `{"name": ...}` dicts."""
    return [_named_spec(v) for v in _names(value)]


metric_list.__name__ = "metrics"


def name_list(value):
    """`"dice,iou"` or `["dice", "iou"]` to a list of names."""
    names = _names(value)
    if not all(isinstance(v, str) for v in names):
        fail("a comma-separated list of names", value)
    return names


def optional_choice(*choices):
    """A choice among `choices` where `"none"` (or JSON null) means `None`."""

    def convert(value):
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return None
        if value not in choices:
            fail("one of " + ", ".join(repr(c) for c in (*choices, "none")), value)
        return value

    convert.__name__ = "choice"
    return convert


# `train --augment`: JointAugmentation's arguments of each mode (None: no augmentation).
AUGMENTATIONS = {
    "geometric": dict.fromkeys(
        ("rotation", "zoom", "brightness", "contrast", "gamma", "noise"), 0.0
    ),
    "all": {},
    "none": None,
}


def augment_choice(value):
    """A mode of `AUGMENTATIONS`; `true` and `false` (runs from before the modes) are
    "all" and "none"."""
    if isinstance(value, bool):
        return "all" if value else "none"
    if value not in AUGMENTATIONS:
        fail("one of " + ", ".join(repr(mode) for mode in AUGMENTATIONS), value)
    return value


def intensity_choice(value):
    """An intensity mode (`none`: values as stored) or, in a config file, a dict.

    Returns the complete spec of `keras_unet_seg.data.intensity_spec`.
    """
    from keras_unet_seg.data import intensity_spec
    from keras_unet_seg.data.intensity import INTENSITY_MODES

    if isinstance(value, str) and value.lower() == "none":
        value = None
    try:
        return intensity_spec(value)
    except ValueError:
        names = ", ".join(str(m).lower() for m in INTENSITY_MODES)
        fail(
            f"one of {names}, or in a config file a dict such as "
            '{"mode": "percentile", "low": 2, "high": 99.5}',
            value,
        )


intensity_choice.__name__ = "intensity"


def jit_compile_choice(value):
    """`"auto"`, or `True`/`False` from `on`/`off` (`true`/`false`, or a JSON boolean)."""
    if isinstance(value, bool) or value == "auto":
        return value
    if isinstance(value, str) and value.lower() in ("on", "true", "off", "false"):
        return value.lower() in ("on", "true")
    fail("auto, on or off", value)


jit_compile_choice.__name__ = "choice"
