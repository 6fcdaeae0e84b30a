"""Distribution on JAX's own engine: meshes, sharding rules, sharded init and multi-host runs.

Example:
    >>> from jax.sharding import PartitionSpec as P
    >>> from hk_core import distributed
    >>> mesh = distributed.make_mesh({"data": -1, "model": 1}, devices=jax.devices()[:1])
    >>> rules = distributed.ShardingRules([(r"linear/w$", P(None, "model"))])
    >>> f = hk.transform(lambda x: hk.Linear(4)(x))
    >>> params = distributed.sharded_init(f, mesh, rules, 0, jnp.ones([2, 3]))
    >>> params["linear"]["w"].sharding.spec
    P(None, 'model')
"""

from hk_core._src.distributed.data import shard_batch as shard_batch
from hk_core._src.distributed.init import sharded_init as sharded_init
from hk_core._src.distributed.mesh import make_mesh as make_mesh
from hk_core._src.distributed.multihost import initialize as initialize
from hk_core._src.distributed.rules import Placement as Placement
from hk_core._src.distributed.rules import ShardingRuleError as ShardingRuleError
from hk_core._src.distributed.rules import ShardingRules as ShardingRules

__all__ = ["Placement", "ShardingRuleError", "ShardingRules", "initialize", "make_mesh",
           "shard_batch", "sharded_init"]
