"""hk.Module with ABCs and Protocols; hk_core's typing protocols (Haiku 0.0.17 black box)."""

import abc
import re
import sys
import typing

import pytest

import hk_core as hk


class _HasFoo(typing.Protocol):
    def foo(self) -> int: ...


@typing.runtime_checkable
class _RuntimeFoo(typing.Protocol):
    def foo(self) -> int: ...


def _abstract_error(class_name, *methods):
    """Python's own message: Haiku's recorded wording up to 3.11; 3.12 reworded it."""
    if sys.version_info < (3, 12):
        how, names = "with", ", ".join(methods)
    else:
        how, names = "without an implementation for", ", ".join(f"'{m}'" for m in methods)
    plural = "s" if len(methods) > 1 else ""
    return re.escape(f"Can't instantiate abstract class {class_name} {how} abstract "
                     f"method{plural} {names}")


def _run(fn):
    return hk.transform(fn).apply({}, None)


def test_module_metaclass_derives_from_abcmeta():
    assert issubclass(type(hk.Module), abc.ABCMeta)


def test_module_with_protocol_base_defines_and_runs():
    class WithProtocol(hk.Module, _HasFoo):
        def foo(self):
            return 1

    # Haiku 0.0.17: MRO ['M', 'Module', 'P', 'Protocol', 'Generic', 'object'], foo() -> 1.
    assert [c.__name__ for c in WithProtocol.__mro__] == [
        "WithProtocol", "Module", "_HasFoo", "Protocol", "Generic", "object"]
    assert _run(lambda: WithProtocol().foo()) == 1


def test_module_with_runtime_protocol_base_is_instance_of_it():
    class WithRuntime(hk.Module, _RuntimeFoo):
        def foo(self):
            return 1

    assert _run(lambda: isinstance(WithRuntime(), _RuntimeFoo)) is True
    assert _run(lambda: isinstance(hk.Linear(1), _RuntimeFoo)) is False


def test_module_with_abc_base_defines_and_runs():
    class WithABC(hk.Module, abc.ABC):
        def __call__(self):
            return 2

    assert [c.__name__ for c in WithABC.__mro__] == ["WithABC", "Module", "ABC", "object"]
    assert _run(lambda: WithABC()()) == 2


class _Abstract(hk.Module, abc.ABC):
    @abc.abstractmethod
    def __call__(self): ...


def test_abstract_method_makes_module_uninstantiable():
    with pytest.raises(TypeError, match=_abstract_error("_Abstract", "__call__")):
        _run(lambda: _Abstract())


def test_abstract_module_fails_with_type_error_outside_transform_too():
    with pytest.raises(TypeError, match="Can't instantiate abstract class _Abstract"):
        _Abstract()


def test_abstractmethod_without_abc_base_is_enforced():
    class NoABC(hk.Module):
        @abc.abstractmethod
        def f(self): ...

    with pytest.raises(TypeError, match=_abstract_error("NoABC", "f")):
        _run(lambda: NoABC())


def test_subclass_implementing_abstract_method_instantiates():
    class Concrete(_Abstract):
        def __call__(self):
            return 3

    assert _run(lambda: Concrete()()) == 3


def test_rnn_core_is_abstract():
    assert hk.RNNCore.__abstractmethods__ == frozenset({"__call__", "initial_state"})
    with pytest.raises(TypeError,
                       match=_abstract_error("RNNCore", "__call__", "initial_state")):
        _run(lambda: hk.RNNCore())


def test_rnn_core_subclass_missing_initial_state_is_abstract():
    class Half(hk.RNNCore):
        def __call__(self, inputs, prev_state):
            return inputs, prev_state

    with pytest.raises(TypeError, match=_abstract_error("Half", "initial_state")):
        _run(lambda: Half())


@pytest.mark.parametrize("proto", [hk.SupportsCall, hk.ModuleProtocol],
                         ids=["SupportsCall", "ModuleProtocol"])
def test_protocol_subclassed_by_non_protocol_raises_with_fix(proto):
    expected = (rf"X is a Protocol and should not be subclassed by a non-Protocol type\..*"
                rf"`class X\({proto.__name__}, Protocol\)`")
    with pytest.raises(TypeError, match=expected):
        class X(proto):  # noqa: F841
            def __call__(self):
                pass


def test_protocol_subclass_message_lists_every_base():
    with pytest.raises(TypeError, match=r"`class Mixed\(Linear, SupportsCall, Protocol\)`"):
        class Mixed(hk.Linear, hk.SupportsCall):  # noqa: F841
            pass


def test_protocol_extended_as_protocol_is_allowed_and_runtime_checkable():
    class Extended(hk.SupportsCall, typing.Protocol):
        def extra(self): ...

    assert Extended._is_runtime_protocol is True
    assert Extended.__abstractmethods__ == frozenset({"__call__", "params_dict", "state_dict"})


@pytest.mark.parametrize("proto, abstract", [
    (hk.ModuleProtocol, {"params_dict", "state_dict"}),
    (hk.SupportsCall, {"__call__", "params_dict", "state_dict"}),
], ids=["ModuleProtocol", "SupportsCall"])
def test_protocol_abstract_methods(proto, abstract):
    assert proto.__abstractmethods__ == frozenset(abstract)


class _LooksLikeModule:
    module_name = "a"
    name = "a"

    def params_dict(self):
        return {}

    def state_dict(self):
        return {}


class _CallableLookalike(_LooksLikeModule):
    def __call__(self):
        pass


@pytest.mark.parametrize("obj, proto, expected", [
    (_LooksLikeModule(), hk.ModuleProtocol, True),
    (_LooksLikeModule(), hk.SupportsCall, False),
    (_CallableLookalike(), hk.SupportsCall, True),
    (lambda: 0, hk.SupportsCall, False),
], ids=["module-like", "module-like-not-callable", "callable-module-like", "lambda"])
def test_protocols_check_structure(obj, proto, expected):
    assert isinstance(obj, proto) is expected


@pytest.mark.parametrize("proto", [hk.SupportsCall, hk.ModuleProtocol],
                         ids=["SupportsCall", "ModuleProtocol"])
def test_modules_satisfy_protocols(proto):
    assert _run(lambda: isinstance(hk.Linear(1), proto)) is True


def test_aliases_match_haiku():
    import collections.abc as cabc

    import jax

    assert hk.Params == cabc.Mapping[str, cabc.Mapping[str, jax.Array]]
    assert hk.State == cabc.Mapping[str, cabc.Mapping[str, jax.Array]]
    assert hk.MutableState == cabc.MutableMapping[str, cabc.MutableMapping[str, jax.Array]]
