"""hk_core: Haiku-style neural networks for JAX. Names under ``hk_core._src`` are private.

Example:
    >>> import hk_core as hk
    >>> f = hk.transform(lambda x: hk.nets.MLP([4, 1])(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([2, 3]))
    >>> f.apply(params, None, jnp.ones([2, 3])).shape
    (2, 1)
"""

from hk_core import config as config
from hk_core import data_structures as data_structures
from hk_core import errors as errors
from hk_core import experimental as experimental
from hk_core import initializers as initializers
from hk_core import nets as nets
from hk_core import testing as testing
from hk_core._src.transforms.layer_stack import LayerStackTransparencyMapping as LayerStackTransparencyMapping
from hk_core._src.core.lift import LiftWithStateUpdater as LiftWithStateUpdater
from hk_core._src.core.lift import lift as lift
from hk_core._src.core.lift import lift_with_state as lift_with_state
from hk_core._src.core.lift import transparent_lift as transparent_lift
from hk_core._src.core.lift import transparent_lift_with_state as transparent_lift_with_state
from hk_core._src.core.interceptors import MethodContext as MethodContext
from hk_core._src.core.interceptors import intercept_methods as intercept_methods
from hk_core._src.core.module import Module as Module
from hk_core._src.core.module import name_like as name_like
from hk_core._src.core.module import to_module as to_module
from hk_core._src.core.module import transparent as transparent
from hk_core._src.core.naming import force_name as force_name
from hk_core._src.core.naming import name_scope as name_scope
from hk_core._src.core.params import DO_NOT_STORE as DO_NOT_STORE
from hk_core._src.core.params import GetterContext as GetterContext
from hk_core._src.core.params import SetterContext as SetterContext
from hk_core._src.core.params import custom_creator as custom_creator
from hk_core._src.core.params import custom_getter as custom_getter
from hk_core._src.core.params import custom_setter as custom_setter
from hk_core._src.core.params import get_current_state as get_current_state
from hk_core._src.core.params import get_initial_state as get_initial_state
from hk_core._src.core.params import get_parameter as get_parameter
from hk_core._src.core.params import get_params as get_params
from hk_core._src.core.params import get_state as get_state
from hk_core._src.core.params import set_state as set_state
from hk_core._src.core.rng import PRNGSequence as PRNGSequence
from hk_core._src.core.rng import maybe_get_rng_sequence_state as maybe_get_rng_sequence_state
from hk_core._src.core.rng import maybe_next_rng_key as maybe_next_rng_key
from hk_core._src.core.rng import next_rng_key as next_rng_key
from hk_core._src.core.rng import next_rng_keys as next_rng_keys
from hk_core._src.core.rng import replace_rng_sequence_state as replace_rng_sequence_state
from hk_core._src.core.rng import reserve_rng_keys as reserve_rng_keys
from hk_core._src.core.rng import with_rng as with_rng
from hk_core._src.core.naming import current_name as current_name
from hk_core._src.core.stateful import cond as cond
from hk_core._src.core.stateful import eval_shape as eval_shape
from hk_core._src.core.stateful import fori_loop as fori_loop
from hk_core._src.core.stateful import grad as grad
from hk_core._src.core.stateful import map as map  # noqa: A004 - Haiku's name
from hk_core._src.core.stateful import remat as remat
from hk_core._src.core.stateful import scan as scan
from hk_core._src.core.stateful import switch as switch
from hk_core._src.core.stateful import value_and_grad as value_and_grad
from hk_core._src.core.stateful import vmap as vmap
from hk_core._src.core.stateful import while_loop as while_loop
from hk_core._src.core.transform import MultiTransformed as MultiTransformed
from hk_core._src.core.transform import MultiTransformedWithState as MultiTransformedWithState
from hk_core._src.core.transform import Transformed as Transformed
from hk_core._src.core.transform import TransformedWithState as TransformedWithState
from hk_core._src.core.transform import multi_transform as multi_transform
from hk_core._src.core.transform import multi_transform_with_state as multi_transform_with_state
from hk_core._src.core.transform import running_init as running_init
from hk_core._src.core.transform import transform as transform
from hk_core._src.core.transform import transform_with_state as transform_with_state
from hk_core._src.core.transform import with_empty_state as with_empty_state
from hk_core._src.core.transform import without_apply_rng as without_apply_rng
from hk_core._src.core.transform import without_state as without_state
from hk_core._src.core.typing import ModuleProtocol as ModuleProtocol
from hk_core._src.core.typing import MutableParams as MutableParams
from hk_core._src.core.typing import MutableState as MutableState
from hk_core._src.core.typing import Params as Params
from hk_core._src.core.typing import State as State
from hk_core._src.core.typing import SupportsCall as SupportsCall
from hk_core._src.layers.dropout import dropout as dropout
from hk_core._src.layers.linear import Linear as Linear

# --- layers: basic, reshape, conv, pad, pooling, embed ---
from hk_core import pad as pad
from hk_core._src.layers.basic import BatchApply as BatchApply
from hk_core._src.layers.basic import Bias as Bias
from hk_core._src.layers.basic import Sequential as Sequential
from hk_core._src.layers.basic import expand_apply as expand_apply
from hk_core._src.layers.basic import multinomial as multinomial
from hk_core._src.layers.basic import one_hot as one_hot
from hk_core._src.layers.conv import Conv1D as Conv1D
from hk_core._src.layers.conv import Conv2D as Conv2D
from hk_core._src.layers.conv import Conv3D as Conv3D
from hk_core._src.layers.conv import ConvND as ConvND
from hk_core._src.layers.conv_transpose import Conv1DTranspose as Conv1DTranspose
from hk_core._src.layers.conv_transpose import Conv2DTranspose as Conv2DTranspose
from hk_core._src.layers.conv_transpose import Conv3DTranspose as Conv3DTranspose
from hk_core._src.layers.conv_transpose import ConvNDTranspose as ConvNDTranspose
from hk_core._src.layers.data_format import get_channel_index as get_channel_index
from hk_core._src.transforms.deferred import Deferred as Deferred
from hk_core._src.layers.depthwise_conv import DepthwiseConv1D as DepthwiseConv1D
from hk_core._src.layers.depthwise_conv import DepthwiseConv2D as DepthwiseConv2D
from hk_core._src.layers.depthwise_conv import DepthwiseConv3D as DepthwiseConv3D
from hk_core._src.layers.depthwise_conv import SeparableDepthwiseConv2D as SeparableDepthwiseConv2D
from hk_core._src.layers.embed import Embed as Embed
from hk_core._src.layers.embed import EmbedLookupStyle as EmbedLookupStyle
from hk_core._src.layers.pooling import AvgPool as AvgPool
from hk_core._src.layers.pooling import MaxPool as MaxPool
from hk_core._src.layers.pooling import avg_pool as avg_pool
from hk_core._src.layers.pooling import max_pool as max_pool
from hk_core._src.layers.reshape import Flatten as Flatten
from hk_core._src.layers.reshape import Reshape as Reshape
# --- layers: normalization, moving averages, spectral norm, mixed precision ---
from hk_core._src.layers.batch_norm import BatchNorm as BatchNorm
from hk_core._src.layers.moving_averages import EMAParamsTree as EMAParamsTree
from hk_core._src.layers.moving_averages import ExponentialMovingAverage as ExponentialMovingAverage
from hk_core._src.layers.group_norm import GroupNorm as GroupNorm
from hk_core._src.layers.layer_norm import InstanceNorm as InstanceNorm
from hk_core._src.layers.layer_norm import LayerNorm as LayerNorm
from hk_core._src.layers.layer_norm import RMSNorm as RMSNorm
from hk_core._src.layers.spectral_norm import SNParamsTree as SNParamsTree
from hk_core._src.layers.spectral_norm import SpectralNorm as SpectralNorm
from hk_core import mixed_precision as mixed_precision
# --- layers: attention, recurrent, layer_stack ---
from hk_core._src.layers.attention import MultiHeadAttention as MultiHeadAttention
from hk_core._src.layers.conv_lstm import Conv1DLSTM as Conv1DLSTM
from hk_core._src.layers.conv_lstm import Conv2DLSTM as Conv2DLSTM
from hk_core._src.layers.conv_lstm import Conv3DLSTM as Conv3DLSTM
from hk_core._src.transforms.layer_stack import layer_stack as layer_stack
from hk_core._src.layers.recurrent import GRU as GRU
from hk_core._src.layers.recurrent import LSTM as LSTM
from hk_core._src.layers.recurrent import DeepRNN as DeepRNN
from hk_core._src.layers.recurrent import IdentityCore as IdentityCore
from hk_core._src.layers.recurrent import LSTMState as LSTMState
from hk_core._src.layers.recurrent import ResetCore as ResetCore
from hk_core._src.layers.recurrent import RNNCore as RNNCore
from hk_core._src.layers.recurrent import VanillaRNN as VanillaRNN
from hk_core._src.layers.recurrent import (
    deep_rnn_with_skip_connections as deep_rnn_with_skip_connections)
from hk_core._src.transforms.unroll import dynamic_unroll as dynamic_unroll
from hk_core._src.transforms.unroll import static_unroll as static_unroll
# --- experimental utilities: summary, to_dot ---
from hk_core._src.inspect.dot import to_dot as to_dot

# The one version source: setup.cfg reads it (`attr:`) without importing hk_core, which
# needs it to stay a plain string literal. Bump it here only (BUILD.md, "Release").
__version__ = "0.1.0"

__all__ = [
    "AvgPool", "BatchApply", "BatchNorm", "Bias", "Conv1D", "Conv1DLSTM", "Conv1DTranspose",
    "Conv2D", "Conv2DLSTM", "Conv2DTranspose", "Conv3D", "Conv3DLSTM", "Conv3DTranspose", "ConvND",
    "ConvNDTranspose", "DO_NOT_STORE", "DeepRNN", "Deferred", "DepthwiseConv1D", "DepthwiseConv2D",
    "DepthwiseConv3D", "EMAParamsTree", "Embed", "EmbedLookupStyle", "ExponentialMovingAverage",
    "Flatten", "GRU", "GetterContext", "GroupNorm", "IdentityCore", "InstanceNorm", "LSTM",
    "LSTMState", "LayerNorm", "LayerStackTransparencyMapping", "LiftWithStateUpdater", "Linear",
    "MaxPool", "MethodContext", "Module", "ModuleProtocol", "MultiHeadAttention",
    "MultiTransformed", "MultiTransformedWithState", "MutableParams", "MutableState",
    "PRNGSequence", "Params", "RMSNorm", "RNNCore", "ResetCore", "Reshape", "SNParamsTree",
    "Sequential", "SetterContext", "SpectralNorm", "State", "SupportsCall", "Transformed",
    "TransformedWithState", "VanillaRNN", "avg_pool", "cond", "config", "current_name",
    "custom_creator", "custom_getter", "custom_setter", "data_structures",
    "deep_rnn_with_skip_connections", "dropout", "dynamic_unroll", "errors", "eval_shape",
    "expand_apply",
    "experimental", "force_name", "fori_loop", "get_channel_index", "get_current_state",
    "get_initial_state", "get_parameter", "get_params", "get_state", "grad", "initializers",
    "intercept_methods", "layer_stack", "lift", "lift_with_state", "map", "max_pool",
    "maybe_get_rng_sequence_state", "maybe_next_rng_key", "mixed_precision", "multi_transform",
    "multi_transform_with_state", "multinomial", "name_like", "name_scope", "nets", "next_rng_key",
    "next_rng_keys", "one_hot", "pad", "remat", "replace_rng_sequence_state", "reserve_rng_keys",
    "running_init", "scan", "set_state", "static_unroll", "switch", "testing", "to_dot",
    "to_module", "transform", "transform_with_state", "transparent", "transparent_lift",
    "transparent_lift_with_state", "value_and_grad", "vmap", "while_loop", "with_empty_state",
    "with_rng", "without_apply_rng", "without_state",
]
