"""The public surface matches Haiku 0.0.17's (API.md §5.5) and documents itself."""

import inspect

import pytest

import hk_core as hk

TIER1 = """transform transform_with_state without_apply_rng without_state with_empty_state
multi_transform multi_transform_with_state Transformed TransformedWithState MultiTransformed
MultiTransformedWithState running_init Module ModuleProtocol SupportsCall to_module transparent
name_like force_name current_name name_scope intercept_methods MethodContext get_parameter
get_state set_state get_params get_current_state get_initial_state GetterContext SetterContext
custom_creator custom_getter custom_setter DO_NOT_STORE next_rng_key next_rng_keys
maybe_next_rng_key reserve_rng_keys with_rng maybe_get_rng_sequence_state
replace_rng_sequence_state PRNGSequence vmap scan map cond switch while_loop fori_loop remat grad
value_and_grad eval_shape lift transparent_lift lift_with_state transparent_lift_with_state
LiftWithStateUpdater LayerStackTransparencyMapping Params State MutableParams MutableState
data_structures""".split()
TIER2 = """Linear Bias Flatten Reshape Sequential Deferred BatchApply expand_apply one_hot multinomial
dropout get_channel_index ConvND Conv1D Conv2D Conv3D ConvNDTranspose Conv1DTranspose
Conv2DTranspose Conv3DTranspose DepthwiseConv1D DepthwiseConv2D DepthwiseConv3D pad BatchNorm
LayerNorm InstanceNorm GroupNorm RMSNorm SpectralNorm SNParamsTree ExponentialMovingAverage
EMAParamsTree Embed EmbedLookupStyle max_pool avg_pool MaxPool AvgPool MultiHeadAttention RNNCore
VanillaRNN LSTM LSTMState GRU Conv1DLSTM Conv2DLSTM Conv3DLSTM IdentityCore ResetCore DeepRNN
deep_rnn_with_skip_connections static_unroll dynamic_unroll layer_stack""".split()
TIER3_4 = "nets initializers mixed_precision experimental config testing to_dot".split()
EXTRAS = ["errors"]  # beyond Haiku: hk_core's typed errors
ALL_NAMES = TIER1 + TIER2 + TIER3_4 + EXTRAS

EXPERIMENTAL = """current_name custom_creator custom_getter DO_NOT_STORE force_name intercept_methods
get_current_state get_initial_state get_params layer_stack LayerStackTransparencyMapping lift
lift_with_state LiftWithStateUpdater maybe_get_rng_sequence_state MethodContext name_like
name_scope GetterContext replace_rng_sequence_state transparent_lift transparent_lift_with_state
to_dot ParamContext tabulate eval_summary ArraySpec MethodInvocation ModuleDetails
abstract_to_dot jaxpr_info check_jax_usage module_auto_repr rng_reserve_size
optimize_rng_use""".split()
NETS = """MLP ResNet ResNet18 ResNet34 ResNet50 ResNet101 ResNet152 ResNet200 MobileNetV1
VectorQuantizer VectorQuantizerEMA""".split()
INITIALIZERS = """Initializer Constant RandomNormal RandomUniform TruncatedNormal VarianceScaling
UniformScaling Orthogonal Identity""".split()
PAD = "PadFn valid same full causal reverse_causal create create_from_padfn create_from_tuple " \
      "is_padfn".split()
DATA_STRUCTURES = """to_haiku_dict to_immutable_dict to_mutable_dict filter is_subset map merge
partition partition_n traverse tree_bytes tree_size""".split()
MIXED_PRECISION = "set_policy get_policy clear_policy push_policy current_policy".split()
ERRORS = """LayerError InputShapeError ConfigurationError ArgumentTypeError UnknownPaddingError
MissingRNGError NonEmptyStateError JaxUsageError NotInTransformError InvalidModuleNameError
ParameterShapeError MissingParameterError""".split()


@pytest.mark.parametrize("name", ALL_NAMES)
def test_haiku_name_is_exported_in_all(name):
    assert hasattr(hk, name)
    assert name in hk.__all__


def test_separable_depthwise_conv_is_importable_but_not_in_all():
    assert hasattr(hk, "SeparableDepthwiseConv2D")
    assert "SeparableDepthwiseConv2D" not in hk.__all__


def test_all_is_sorted_and_complete():
    assert hk.__all__ == sorted(hk.__all__)
    assert sorted(set(hk.__all__) - set(ALL_NAMES)) == []


@pytest.mark.parametrize("module, names", [
    (hk.experimental, EXPERIMENTAL), (hk.nets, NETS), (hk.initializers, INITIALIZERS),
    (hk.pad, PAD), (hk.data_structures, DATA_STRUCTURES), (hk.mixed_precision, MIXED_PRECISION),
    (hk.errors, ERRORS),
])
def test_submodule_exports(module, names):
    missing = [n for n in names if not hasattr(module, n)]
    assert missing == []
    assert sorted(set(names) - set(module.__all__)) == []


def test_experimental_reexports_are_the_same_objects():
    for name in ("lift", "name_scope", "custom_getter", "GetterContext", "layer_stack"):
        assert getattr(hk.experimental, name) is getattr(hk, name)
    assert hk.experimental.ParamContext is hk.GetterContext


def test_config_and_testing_helpers():
    assert callable(hk.config.set) and callable(hk.config.context)
    assert callable(hk.testing.transform_and_run)
    assert isinstance(hk.__version__, str)


def _public_callables():
    seen = {}
    for module in (hk, hk.experimental, hk.nets, hk.initializers, hk.pad, hk.data_structures,
                   hk.mixed_precision):
        for name in module.__all__:
            obj = getattr(module, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and \
                    obj.__module__.startswith("hk_core"):
                seen[f"{module.__name__}.{name}"] = obj
    return sorted(seen.items())


@pytest.mark.parametrize("qualname, obj", _public_callables(), ids=lambda v: v
                         if isinstance(v, str) else "")
def test_every_public_callable_documents_a_runnable_example(qualname, obj):
    assert ">>>" in (obj.__doc__ or ""), f"{qualname} has no >>> example"
