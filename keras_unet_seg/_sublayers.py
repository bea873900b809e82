"""The layers nested in a layer, found through public attributes only."""

import keras


def children(layer):
    """The layers that `layer` holds directly, in attribute order, without repeats.

    A model's are its `layers`; any other layer's are the layers in its
    public attributes (a layer, or a list, tuple or dict of layers).
    """
    if isinstance(layer, keras.Model):
        return list(layer.layers)
    found = {}
    for name, value in vars(layer).items():
        if name.startswith("_"):
            continue
        if isinstance(value, dict):
            value = list(value.values())
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, keras.layers.Layer) and item is not layer:
                found.setdefault(id(item), item)
    return list(found.values())


def sublayers(layer):
    """Every layer nested in `layer`, each once, a layer before those inside it."""
    found, stack = {}, list(reversed(children(layer)))
    while stack:
        item = stack.pop()
        if id(item) in found or item is layer:
            continue
        found[id(item)] = item
        stack.extend(reversed(children(item)))
    return list(found.values())
