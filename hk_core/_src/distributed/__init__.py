"""Distribution on JAX's own engine: meshes, sharding rules, sharded init, batches, multi-host."""
