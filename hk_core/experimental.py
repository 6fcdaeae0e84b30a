"""Experimental APIs (Haiku's ``hk.experimental``)."""

from hk_core._src.transforms.layer_stack import LayerStackTransparencyMapping as LayerStackTransparencyMapping
from hk_core._src.core.lift import LiftWithStateUpdater as LiftWithStateUpdater
from hk_core._src.core.lift import lift as lift
from hk_core._src.core.lift import lift_with_state as lift_with_state
from hk_core._src.core.lift import transparent_lift as transparent_lift
from hk_core._src.core.lift import transparent_lift_with_state as transparent_lift_with_state
from hk_core._src.core.interceptors import MethodContext as MethodContext
from hk_core._src.core.interceptors import intercept_methods as intercept_methods
from hk_core._src.core.module import name_like as name_like
from hk_core._src.core.naming import current_name as current_name
from hk_core._src.core.naming import force_name as force_name
from hk_core._src.core.naming import name_scope as name_scope
from hk_core._src.core.params import DO_NOT_STORE as DO_NOT_STORE
from hk_core._src.core.params import GetterContext as GetterContext
from hk_core._src.core.params import GetterContext as ParamContext
from hk_core._src.core.params import custom_creator as custom_creator
from hk_core._src.core.params import custom_getter as custom_getter
from hk_core._src.core.params import get_current_state as get_current_state
from hk_core._src.core.params import get_initial_state as get_initial_state
from hk_core._src.core.params import get_params as get_params
from hk_core._src.core.rng import maybe_get_rng_sequence_state as maybe_get_rng_sequence_state
from hk_core._src.core.rng import replace_rng_sequence_state as replace_rng_sequence_state

# --- layers: attention, recurrent, layer_stack ---
from hk_core._src.transforms.layer_stack import layer_stack as layer_stack
# --- experimental utilities: summary, to_dot, jaxpr_info, check_jax_usage, rng options ---
from hk_core._src.inspect import jaxpr_info as jaxpr_info
from hk_core._src.inspect.dot import abstract_to_dot as abstract_to_dot
from hk_core._src.inspect.dot import to_dot as to_dot
from hk_core._src.inspect.summary import ArraySpec as ArraySpec
from hk_core._src.inspect.summary import MethodInvocation as MethodInvocation
from hk_core._src.inspect.summary import ModuleDetails as ModuleDetails
from hk_core._src.inspect.summary import eval_summary as eval_summary
from hk_core._src.inspect.summary import tabulate as tabulate
from hk_core._src.core.abstract_eval import fast_eval_shape as fast_eval_shape
from hk_core._src.core.rng_optimization import optimize_rng_use as optimize_rng_use
from hk_core._src.core.switches import check_jax_usage as check_jax_usage
from hk_core._src.core.switches import module_auto_repr as module_auto_repr
from hk_core._src.core.switches import rng_reserve_size as rng_reserve_size

__all__ = [
    "ArraySpec", "DO_NOT_STORE", "GetterContext", "LayerStackTransparencyMapping",
    "LiftWithStateUpdater", "MethodContext", "MethodInvocation", "ModuleDetails", "ParamContext",
    "abstract_to_dot", "check_jax_usage", "current_name", "custom_creator", "custom_getter",
    "eval_summary", "force_name", "get_current_state", "get_initial_state", "get_params",
    "intercept_methods", "jaxpr_info", "layer_stack", "lift", "lift_with_state",
    "maybe_get_rng_sequence_state", "module_auto_repr", "name_like", "name_scope",
    "optimize_rng_use", "replace_rng_sequence_state", "rng_reserve_size", "tabulate", "to_dot",
    "transparent_lift", "transparent_lift_with_state",
]
