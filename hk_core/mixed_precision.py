"""Mixed precision (Haiku's ``hk.mixed_precision``): dtype policies per module class or path.

Policies may be ``hk.mixed_precision.Policy`` objects, strings such as
``"params=float32,compute=bfloat16,output=float32"``, or any object with ``jmp.Policy``'s
interface (hk_core does not depend on ``jmp``). Beyond Haiku, ``set_policy``,
``get_policy``, ``clear_policy`` and ``push_policy`` also accept a module path
(``"mlp/~/linear_0"``) or a compiled ``re.Pattern`` to target single module instances.

Example:
    >>> import re
    >>> hk.mixed_precision.set_policy(re.compile(r"mlp/~/linear_1"), "c=bf16,o=bf16")
    >>> f = hk.transform(lambda x: hk.nets.MLP([3, 2])(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones([1, 4]))
    >>> f.apply(params, None, jnp.ones([1, 4])).dtype
    dtype(bfloat16)
    >>> hk.mixed_precision.clear_policy(re.compile(r"mlp/~/linear_1"))
"""

from hk_core._src.mixed_precision.mixed_precision import clear_policy as clear_policy
from hk_core._src.mixed_precision.mixed_precision import current_policy as current_policy
from hk_core._src.mixed_precision.mixed_precision import get_policy as get_policy
from hk_core._src.mixed_precision.mixed_precision import push_policy as push_policy
from hk_core._src.mixed_precision.mixed_precision import set_policy as set_policy
from hk_core._src.mixed_precision.policy import Policy as Policy

__all__ = ["Policy", "clear_policy", "current_policy", "get_policy", "push_policy", "set_policy"]
