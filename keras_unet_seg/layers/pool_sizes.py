"""`plan_pool_sizes`: which axes each U-Net level pools, from the patch size and spacing."""

from keras_unet_seg import _validation

__all__ = ["plan_pool_sizes"]


def plan_pool_sizes(patch_size, depth, spacing=None, min_size=4):
    """Plans one pool size a level, pooling only the axes that are large enough.

    A CT volume of 5 mm slices with 0.8 mm pixels, pooled 2x along every axis
    at every level, loses its few slices after two levels while its planes
    are still fine. nnU-Net's rule avoids that: at each level, among the axes
    whose size is at least `2 * min_size`, those whose voxel spacing (as
    pooled so far) is less than twice the finest of their spacings are pooled
    by 2; the others keep their size (pool 1). The result is what
    `UNet(pool_sizes=...)` takes, and the model then pads each axis to the
    product of its pool sizes.

    Args:
        patch_size: the spatial size of the training patches, one int an
            axis, such as `(20, 160, 160)` (depth, height, width).
        depth: int, the number of levels to plan (the U-Net's `depth`).
        spacing: the voxel spacing, one positive number an axis in the
            order of `patch_size` (the `spacing` of
            `keras_unet_seg.data.read_volume`). Defaults to `None`: the same
            along every axis.
        min_size: int, the smallest size an axis may be pooled down to.
            Defaults to `4`, nnU-Net's.

    Returns:
        A list of `depth` tuples, one int (1 or 2) an axis.

    Raises:
        InvalidArgumentError: if an argument is invalid, or if some level
            could pool no axis (the patch is too small for `depth` levels).

    Example:

    >>> plan_pool_sizes((20, 160, 160), depth=4, spacing=(5.0, 0.8, 0.8))
    [(1, 2, 2), (1, 2, 2), (2, 2, 2), (2, 2, 2)]
    >>> plan_pool_sizes((5, 64, 64), depth=2)
    [(1, 2, 2), (1, 2, 2)]

    Reference:
        - [Isensee et al., 2021](https://doi.org/10.1038/s41592-020-01008-z)
          (nnU-Net)
    """
    sizes = _check_sizes(patch_size)
    _validation.check_positive_int("depth", depth)
    _validation.check_positive_int("min_size", min_size)
    spacings = _check_spacing(spacing, len(sizes))
    plan = []
    for level in range(depth):
        large = [size >= 2 * min_size for size in sizes]
        if not any(large):
            raise _validation.invalid_value(
                "depth",
                f"at most {level} levels for a patch of {tuple(patch_size)} with "
                f"min_size={min_size} (no axis can be pooled further)",
                depth,
            )
        finest = min(s for s, poolable in zip(spacings, large, strict=True) if poolable)
        pool = tuple(
            2 if poolable and spacing < 2 * finest else 1
            for spacing, poolable in zip(spacings, large, strict=True)
        )
        plan.append(pool)
        sizes = [size // p for size, p in zip(sizes, pool, strict=True)]
        spacings = [s * p for s, p in zip(spacings, pool, strict=True)]
    return plan


def _check_sizes(patch_size):
    valid = isinstance(patch_size, (list, tuple)) and len(patch_size) in (2, 3)
    if not valid or not all(_validation.is_int(v) and v >= 1 for v in patch_size):
        raise _validation.invalid_value(
            "patch_size", "one positive int a spatial axis (2 or 3 of them)", patch_size
        )
    return [int(v) for v in patch_size]


def _check_spacing(spacing, rank):
    if spacing is None:
        return [1.0] * rank
    valid = isinstance(spacing, (list, tuple)) and len(spacing) == rank
    if not valid or not all(_validation.is_real(v) and v > 0 for v in spacing):
        raise _validation.invalid_value(
            "spacing", f"None or {rank} positive numbers, one a spatial axis", spacing
        )
    return [float(v) for v in spacing]
