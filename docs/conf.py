"""Sphinx configuration of the keras-unet-seg documentation.

Build (the checks CI runs; both must pass with no warnings):

    sphinx-build -W --keep-going -b html docs docs/_build/html
    sphinx-build -W --keep-going -b doctest docs docs/_build/doctest

`pip install -e ".[docs]"` installs what this needs. The build works offline.
Intersphinx links to Keras and TensorFlow come from small local inventories
(`_intersphinx/`, see `_ext/inventories.py`); the Python, NumPy and community
TensorFlow inventories are downloaded only when the environment variable
`KERAS_UNET_SEG_DOCS_ONLINE=1` says the network is there, so that an offline
build never fails on an unreachable inventory under `-W`.

The figures in `figures/` are made by the library itself with
`python docs/make_figures.py` and committed with that script (they take about
a minute of CPU training to make, too much for every build).
"""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

# The TensorFlow backend unless told otherwise, so that doctest outputs are stable;
# and quiet TensorFlow start-up logs.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(DOCS / "_ext"))
if (ROOT / "keras_unet_seg" / "__init__.py").exists():
    # The checkout's package (the same one an editable install points to).
    sys.path.insert(0, str(ROOT))

import api_reference  # noqa: E402
import inventories  # noqa: E402

import keras_unet_seg  # noqa: E402

# -- Project ---------------------------------------------------------------------------

project = "keras-unet-seg"
author = "keras-unet-seg developers"
copyright = "keras-unet-seg developers, Apache-2.0"
release = keras_unet_seg.__version__
version = ".".join(release.split(".")[:2])

# -- General ---------------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "sphinx.ext.doctest",
    "myst_parser",
    "keras_docstrings",  # _ext/: Markdown habits of Keras docstrings -> RST
    "command_help",  # _ext/: the keras-unet-seg --help output
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "_intersphinx"]

# `name` in a docstring renders as code and links when the name is documented,
# as Keras docstrings expect.
default_role = "py:obj"

# -- API reference ---------------------------------------------------------------------

# api/index.rst lists every public name; written here, before autosummary reads it.
api_reference.write(DOCS / "api" / "index.rst")

autosummary_generate = True
autosummary_imported_members = False
# Module pages (`keras_unet_seg.losses`) list their names as documented elsewhere.
autosummary_context = {"module_members": api_reference.module_members()}
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_preserve_defaults = True  # `conv_block=ConvBlock`, as written
# Inherited Keras docstrings (`call`, `build`, ...) are Markdown meant for keras.io:
# only what this library documents itself is shown.
autodoc_inherit_docstrings = False
autoclass_content = "class"

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_include_init_with_doc = False
napoleon_use_admonition_for_examples = False
napoleon_use_rtype = False
# Keras-style sections. "Returns" is prose in Keras docstrings ("A tuple `(x, skip)`:
# ..."), not napoleon's "type: description", so it is rendered as written.
napoleon_custom_sections = [
    ("Call arguments", "params_style"),
    "Input shape",
    "Output shape",
    "Returns",
    "Reference",
]

# -- Intersphinx -----------------------------------------------------------------------

ONLINE = os.environ.get("KERAS_UNET_SEG_DOCS_ONLINE", "") == "1"
_INVENTORIES = DOCS / "_build" / "intersphinx"
_keras_inv = inventories.write_inventory(
    DOCS / "_intersphinx" / "keras.txt", _INVENTORIES / "keras.inv", "Keras", "3"
)
_tf_inv = inventories.write_inventory(
    DOCS / "_intersphinx" / "tensorflow.txt", _INVENTORIES / "tensorflow.inv", "TensorFlow", "2"
)
_TF_COMMUNITY_INV = "https://github.com/GPflow/tensorflow-intersphinx/raw/master/tf2_py_objects.inv"

intersphinx_mapping = {
    "keras": ("https://keras.io/api/", str(_keras_inv)),
    "tensorflow": (
        "https://www.tensorflow.org/api_docs/python/",
        (_TF_COMMUNITY_INV, str(_tf_inv)) if ONLINE else str(_tf_inv),
    ),
}
if ONLINE:
    intersphinx_mapping["python"] = ("https://docs.python.org/3", None)
    intersphinx_mapping["numpy"] = ("https://numpy.org/doc/stable", None)
intersphinx_timeout = 10

# -- Doctest ---------------------------------------------------------------------------

# The namespace of the guide pages' examples: the package's public names, Keras and
# NumPy, with a fixed seed and the float32 policy. The API pages add the namespace
# of the module that defines the object (`_templates/autosummary/_doctest_namespace.rst`),
# which is what the docstrings' examples assume, as under pytest --doctest-modules.
doctest_global_setup = """
import keras
import numpy as np
from keras_unet_seg import *
keras.config.set_dtype_policy("float32")
keras.utils.set_random_seed(0)
"""
doctest_global_cleanup = """
keras.config.set_dtype_policy("float32")
keras.backend.clear_session()
"""

# -- MyST ------------------------------------------------------------------------------

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# -- HTML ------------------------------------------------------------------------------

html_theme = "furo"
html_title = f"keras-unet-seg {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "source_repository": "https://github.com/keras-unet-seg/keras-unet-seg",
    "source_branch": "main",
    "source_directory": "docs/",
}
