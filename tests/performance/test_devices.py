"""Tests for `keras_unet_seg.performance.devices`."""

from keras_unet_seg.performance import devices
from keras_unet_seg.performance.devices import cpu_supports_bfloat16


def test_cpu_bfloat16_flags():
    assert cpu_supports_bfloat16(["fpu", "avx512f", "avx512_bf16"])
    assert cpu_supports_bfloat16(["AMX_BF16", "amx_tile"])
    assert not cpu_supports_bfloat16(["fpu", "avx2", "avx512f"])
    assert not cpu_supports_bfloat16([])
    assert isinstance(devices.cpu_flags(), frozenset)


def test_accelerator_of_this_machine_is_described():
    kind, capability = devices.accelerator()
    assert kind in ("cpu", "gpu", "tpu")
    assert capability is None or (isinstance(capability, tuple) and len(capability) == 2)
    assert devices._lowest([(8, 6), "7.5", (9, 0)]) == (7, 5)
    assert devices._lowest([(8, 0), None]) is None


def test_performance_package_re_exports_every_public_name():
    from keras_unet_seg import performance
    from keras_unet_seg.performance import distributed, flops, precision

    modules = (devices, distributed, flops, precision)
    for name in performance.__all__:
        assert any(getattr(module, name, None) is getattr(performance, name) for module in modules)
    assert performance.PRECISIONS is precision.PRECISIONS
    assert performance.STRATEGIES is distributed.STRATEGIES


def test_tensorflow_is_imported_only_inside_functions():
    """No module of the package imports TensorFlow when it is imported itself."""
    import ast
    import pathlib

    from keras_unet_seg import performance

    for path in pathlib.Path(performance.__file__).parent.glob("*.py"):
        for node in ast.parse(path.read_text()).body:  # the module's top level
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [alias.name for alias in node.names] + [getattr(node, "module", "")]
                assert not any((name or "").startswith("tensorflow") for name in names), path
