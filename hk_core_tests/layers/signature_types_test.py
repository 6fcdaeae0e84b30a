"""Layer and net constructors type their initializer, padding, mask and dtype arguments."""

import inspect
import typing

import pytest

import hk_core as hk

_TYPED = ("w_init", "b_init", "scale_init", "offset_init", "w_i_init", "w_h_init", "padding",
          "mask", "dtype", "activation")


def _modules():
    namespaces = (hk, hk.nets)
    classes = {obj for ns in namespaces for obj in vars(ns).values()
               if isinstance(obj, type) and issubclass(obj, hk.Module) and obj is not hk.Module}
    return sorted(classes, key=lambda cls: cls.__qualname__)


def test_scan_covers_the_convolutions_and_nets():
    names = {cls.__name__ for cls in _modules()}
    assert {"Conv2D", "Conv2DTranspose", "DepthwiseConv2D", "Linear", "MLP"} <= names


@pytest.mark.parametrize("cls", _modules(), ids=lambda cls: cls.__name__)
def test_constructor_arguments_are_not_typed_any(cls):
    params = inspect.signature(cls.__init__).parameters
    loose = (typing.Any, inspect.Parameter.empty)
    untyped = [name for name in _TYPED if name in params and params[name].annotation in loose]
    assert not untyped, f"{cls.__name__}.__init__: {untyped} typed Any or not at all"
