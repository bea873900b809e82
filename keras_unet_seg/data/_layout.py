"""Where the pairs are: the folder layouts, listing image files and pairing them.

A dataset folder is split (`<subset>/images` and `<subset>/masks`, or
`images/<subset>` and `masks/<subset>`) or flat (`images` and `masks`, split by
`validation_split`); images pair with masks by relative path without extension.
"""

import os
from dataclasses import dataclass

import numpy as np

from keras_unet_seg._errors import DataError
from keras_unet_seg._validation import invalid_value, is_real
from keras_unet_seg.data._decoding import IMAGE_EXTENSIONS

FLAT_SUBSETS = ("training", "validation", "both")


@dataclass(frozen=True)
class Sample:
    """One image/mask pair found on disk, keyed by its relative path without extension."""

    key: str
    image_path: str
    mask_path: str


@dataclass(frozen=True)
class Problem:
    """A sample that cannot be used: the file at fault and why."""

    key: str
    path: str
    reason: str


def list_image_files(directory, extensions=IMAGE_EXTENSIONS):
    """Every supported image file below `directory` (recursive, sorted).

    Hidden files and folders (name starting with ".") and files whose extension is not
    one of `extensions` (the image extensions by default) are left out, as
    `keras.utils.image_dataset_from_directory` does.
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and _extension(name, extensions):
                found.append(os.path.join(dirpath, name))
    return sorted(found)


def _extension(name, extensions):
    """The longest of `extensions` that `name` ends with (``.nii.gz`` before ``.gz``), or ''."""
    matches = [e for e in extensions if name.lower().endswith(e)]
    return max(matches, key=len, default="")


def _key(directory, path, extensions):
    relative = os.path.relpath(path, directory)
    return relative[: len(relative) - len(_extension(relative, extensions))].replace(os.sep, "/")


def _group_by_key(directory, paths, extensions, strip_suffix=""):
    """Maps each key to the files that have it; files without the suffix go to `bad`."""
    groups, bad = {}, []
    for path in paths:
        key = _key(directory, path, extensions)
        if strip_suffix:
            if not key.endswith(strip_suffix):
                bad.append((key, path))
                continue
            key = key[: -len(strip_suffix)]
        groups.setdefault(key, []).append(path)
    return groups, bad


def pair_files(images_dir, masks_dir, mask_suffix="", extensions=IMAGE_EXTENSIONS):
    """Pairs images and masks by relative path without extension (plus `mask_suffix`).

    Files are those of `extensions` (the image extensions by default; a volume's
    ``.nii.gz`` is one extension).

    Returns:
        `(samples, problems, num_found)`: the pairs, one `Problem` for every key that
        cannot be paired, and the number of distinct keys found in both folders, so
        that `len(samples) + len(problems) == num_found`.
    """
    images = list_image_files(images_dir, extensions)
    masks = list_image_files(masks_dir, extensions)
    unreadable = [path for path in images + masks if not _is_utf8(path)]
    problems = [
        Problem(
            "\0" + path,
            path,
            f"File {path!r} has a name that is not valid UTF-8 (shown with \\udcXX "
            "escapes), which the tf.data pipeline cannot read; rename it.",
        )
        for path in unreadable
    ]
    images = [p for p in images if _is_utf8(p)]
    masks = [p for p in masks if _is_utf8(p)]
    image_groups, _ = _group_by_key(images_dir, images, extensions)
    mask_groups, unsuffixed = _group_by_key(masks_dir, masks, extensions, mask_suffix)
    for key, path in unsuffixed:
        # A mask whose name lacks the suffix pairs with nothing: report it under its own
        # name, prefixed so that it cannot collide with the key of a real pair.
        problems.append(
            Problem(
                "\0" + key,
                path,
                f"Mask file '{path}' has no matching image: its name does not end with "
                f"mask_suffix={mask_suffix!r}.",
            )
        )
    samples = []
    for key in sorted(set(image_groups) | set(mask_groups)):
        images, masks = image_groups.get(key, []), mask_groups.get(key, [])
        match = _match(key, images, masks, (images_dir, masks_dir), mask_suffix, extensions)
        (samples if isinstance(match, Sample) else problems).append(match)
    num_found = len(set(image_groups) | set(mask_groups)) + len(unsuffixed)
    num_found += len(unreadable)
    return samples, problems, num_found


def _match(key, images, masks, folders, mask_suffix, extensions):
    """The `Sample` of a key's files, or the `Problem` that keeps them from pairing."""
    images_dir, masks_dir = folders
    extensions = ", ".join(extensions)
    if len(images) > 1 or len(masks) > 1:
        files, kind = (images, "images") if len(images) > 1 else (masks, "masks")
        listed = ", ".join(f"'{p}'" for p in files)
        return Problem(
            key,
            files[0],
            f"Found {len(files)} {kind} with the same name '{key}' and different "
            f"extensions: {listed}. Each name must be unique so that images and "
            "masks pair unambiguously.",
        )
    if not masks:
        return Problem(
            key,
            images[0],
            f"Image file '{images[0]}' has no matching mask in '{masks_dir}' "
            f"(expected a file named '{key}{mask_suffix}' with one of the "
            f"extensions {extensions}).",
        )
    if not images:
        return Problem(
            key,
            masks[0],
            f"Mask file '{masks[0]}' has no matching image in '{images_dir}' "
            f"(expected a file named '{key}' with one of the extensions {extensions}).",
        )
    return Sample(key, images[0], masks[0])


def _is_utf8(path):
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _split_subsets(directory):
    """The subsets of either split layout: `<subset>/images` or `images/<subset>`."""
    found = set()
    for name in sorted(os.listdir(directory)):
        if os.path.isdir(os.path.join(directory, name, "images")):
            found.add(name)
    by_kind = os.path.join(directory, "images")
    if os.path.isdir(by_kind):
        found.update(
            name
            for name in os.listdir(by_kind)
            if os.path.isdir(os.path.join(by_kind, name))
            and os.path.isdir(os.path.join(directory, "masks", name))
        )
    return sorted(found)


def _layout_help(directory):
    return (
        f"Expected split folders '{directory}/<subset>/images' and "
        f"'{directory}/<subset>/masks', or '{directory}/images/<subset>' and "
        f"'{directory}/masks/<subset>', or one flat folder '{directory}/images' and "
        f"'{directory}/masks' (with validation_split to split it)."
    )


def resolve_layout(directory, subset, validation_split, seed):
    """Returns `(images_dir, masks_dir)` for the arguments, or raises.

    A subset is found in either split layout: `directory/<subset>/{images,masks}` or
    `directory/{images,masks}/<subset>`.
    """
    _check_split(subset, validation_split, seed)
    if subset is None or subset in FLAT_SUBSETS:
        images_dir, masks_dir = _flat_folders(directory)
    else:
        images_dir, masks_dir = _subset_folders(directory, subset)
    if not os.path.isdir(masks_dir):
        raise DataError(f"Folder '{images_dir}' has no matching masks folder '{masks_dir}'.")
    return images_dir, masks_dir


def _check_split(subset, validation_split, seed):
    """Checks that `subset`, `validation_split` and `seed` agree."""
    if validation_split is None:
        if subset in FLAT_SUBSETS:
            raise invalid_value(
                "validation_split", f"a float in (0, 1) when subset={subset!r}", validation_split
            )
        return
    if not is_real(validation_split) or not 0 < validation_split < 1:
        raise invalid_value("validation_split", "a float in (0, 1) or None", validation_split)
    if subset not in FLAT_SUBSETS:
        expected = "one of " + ", ".join(repr(s) for s in FLAT_SUBSETS)
        raise invalid_value("subset", f"{expected} when validation_split is set", subset)
    if seed is None:
        raise invalid_value(
            "seed",
            "an int when validation_split is set, so that the training and validation "
            "subsets are disjoint",
            seed,
        )


def _flat_folders(directory):
    """`images` and `masks` of a flat folder, or an error listing its split subsets."""
    if not os.path.isdir(os.path.join(directory, "images")):
        subsets = _split_subsets(directory)
        hint = f" It has split folders {subsets}: pass subset={subsets[0]!r}." if subsets else ""
        raise DataError(
            f"Folder '{directory}' has no 'images' subfolder. {_layout_help(directory)}{hint}"
        )
    return os.path.join(directory, "images"), os.path.join(directory, "masks")


def _subset_folders(directory, subset):
    """The images and masks folders of a named subset, in either split layout."""
    if not isinstance(subset, str):
        raise invalid_value("subset", "a str or None", subset)
    by_subset = os.path.join(directory, subset)
    if os.path.isdir(os.path.join(by_subset, "images")):
        return os.path.join(by_subset, "images"), os.path.join(by_subset, "masks")
    by_kind = [os.path.join(directory, kind, subset) for kind in ("images", "masks")]
    if os.path.isdir(by_kind[0]):
        return tuple(by_kind)
    subsets = _split_subsets(directory)
    hint = ""
    if not subsets and os.path.isdir(os.path.join(directory, "images")):
        hint = (
            " It is one flat folder: pass subset=None, or subset='training' or "
            "'validation' with validation_split and seed to split it."
        )
    raise invalid_value(
        "subset",
        f"the name of a subset of '{directory}' (found: {subsets}). "
        f"{_layout_help(directory)}{hint}",
        subset,
    )


def split_samples(samples, validation_split, seed):
    """`(training, validation)`: a seeded permutation of `samples`, each part in order."""
    order = np.random.RandomState(seed).permutation(len(samples))
    num_val = int(validation_split * len(samples))
    training = [samples[i] for i in sorted(order[: len(samples) - num_val])]
    validation = [samples[i] for i in sorted(order[len(samples) - num_val :])]
    return training, validation
