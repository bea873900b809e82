"""Builds small intersphinx inventories from the hand-written lists in `_intersphinx/`.

Keras publishes no `objects.inv` (keras.io is not built with Sphinx), and the
TensorFlow site does not either; the community inventory for TensorFlow is
fetched only when the network is there (see `conf.py`). These lists name the
few Keras and TensorFlow objects the documentation mentions, with their pages,
so that `keras.Model` or `tf.data.Dataset` link to the official documentation
even in an offline build. Their URLs are written by hand from the sites' URL
schemes and are not checked by the build.

List format, one object a line (`#` starts a comment):

    name  role  [page]

`role` is a Python-domain role (`class`, `function`, `method`, `module`,
`data`); `page` is relative to the project's base URL. When `page` is left out
it is derived from the name the way tensorflow.org lays out its API pages:
`tf.data.Dataset` -> `tf/data/Dataset`, and a method or constant after the
page's class or module as an anchor: `tf.data.Dataset.map` ->
`tf/data/Dataset#map` (write such entries as `tf.data.Dataset.map method`).
"""

import zlib
from pathlib import Path

_ANCHORED_ROLES = ("method", "attribute", "data")


def _derive_page(name, role):
    parts = name.split(".")
    if role in _ANCHORED_ROLES:
        return "/".join(parts[:-1]) + "#" + parts[-1]
    return "/".join(parts)


def read_list(path):
    """Returns `[(name, role, page), ...]` from a list file."""
    entries = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) not in (2, 3):
            raise ValueError(f"{path}: expected 'name role [page]', got {raw!r}")
        name, role = fields[:2]
        page = fields[2] if len(fields) == 3 else _derive_page(name, role)
        entries.append((name, role, page))
    return entries


def write_inventory(list_path, inventory_path, project, version):
    """Compiles a list file into a Sphinx v2 inventory (only rewritten on change)."""
    body = "".join(
        f"{name} py:{role} 1 {page} -\n" for name, role, page in read_list(list_path)
    ).encode("utf-8")
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    ).encode()
    data = header + zlib.compress(body, 9)
    inventory_path = Path(inventory_path)
    if not inventory_path.exists() or inventory_path.read_bytes() != data:
        inventory_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = inventory_path.with_suffix(f".{id(data)}.tmp")
        tmp.write_bytes(data)
        tmp.replace(inventory_path)
    return inventory_path
