"""Shared timing harness: interleaved repetitions, rotated order, min/median, table + JSON.

Every figure is a ratio against a contender measured in the same process, with the order
rotated each repetition, so machine noise hits all contenders alike (BENCHMARKS.md).
"""

import contextlib
import functools
import gc
import json
import statistics
import time
from collections.abc import Callable, Iterator

import jax


wall_clock = time.perf_counter


def device_name() -> str:
    device = jax.devices()[0]
    if device.platform == "cpu":
        return "cpu"
    return f"{device.platform}:{device.device_kind}"


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Collects garbage, then keeps the collector off while a sample runs (as ``timeit``
    does): a generation-2 collection costs tens of ms on a heap as large as JAX's and lands
    on whichever contender happens to cross the threshold, which is noise, not overhead."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def interleaved(contenders: dict[str, Callable[[], object]], repeats: int,
                number: int) -> dict[str, dict[str, float]]:
    """Times each contender ``number`` calls per repetition; returns min/median seconds per call."""
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for fn in contenders.values():  # warm up: compile caches, first-call costs
        jax.block_until_ready(fn())
    for rep in range(repeats):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            fn = contenders[name]
            with gc_paused():
                start = time.perf_counter()
                for _ in range(number):
                    out = fn()
                jax.block_until_ready(out)
                samples[name].append((time.perf_counter() - start) / number)
    return {name: {"min": min(s), "median": statistics.median(s)} for name, s in samples.items()}


def interleaved_no_warmup(contenders, repeats, clock=time.process_time, cold=True,
                          prepare=None):
    """One call per sample, no warm-up. ``clock`` defaults to process CPU time: tracing and
    compiling are CPU work, and CPU time is robust to other load on a shared machine.
    ``cold`` clears JAX's caches (traces of jitted functions, jnp's included) before each
    sample, untimed, so every sample pays what the first trace in a fresh process pays.
    ``prepare`` maps a contender to an untimed step run before each sample, whose result
    the timed call receives (e.g. lower untimed, time the compile)."""
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeats):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            if cold:
                jax.clear_caches()
            timed = contenders[name]
            if prepare is not None:
                timed = functools.partial(timed, prepare[name]())
            with gc_paused():
                start = clock()
                jax.block_until_ready(timed())
                samples[name].append(clock() - start)
    return {name: {"min": min(s), "median": statistics.median(s)} for name, s in samples.items()}


def ratios(results: dict[str, dict[str, dict[str, float]]], floor: str = "raw_jax"
           ) -> dict[str, dict[str, float]]:
    """``{workload: {contender: min-time ratio against the floor}}``."""
    out = {}
    for workload, by_lib in results.items():
        base = by_lib[floor]["min"]
        out[workload] = {lib: round(t["min"] / base, 3) for lib, t in by_lib.items()
                         if lib != floor}
    return out


def report(benchmark: str, results: dict, unit: str = "us", scale: float = 1e6,
           extra: dict | None = None) -> dict:
    """Prints a table (min / median per contender per workload) and a final JSON line."""
    rat = ratios(results)
    width = max(len(w) for w in results) + 2
    print(f"{benchmark} on {device_name()} (times in {unit}; ratio = min / raw_jax min)")
    for workload, by_lib in results.items():
        for lib, t in by_lib.items():
            r = rat[workload].get(lib, 1.0)
            print(f"  {workload:<{width}} {lib:<10} min {t['min'] * scale:12.2f}  "
                  f"median {t['median'] * scale:12.2f}  ratio {r:6.3f}")
    payload = {"benchmark": benchmark, "device": device_name(),
               "results": {w: {lib: {k: v * scale for k, v in t.items()} for lib, t in b.items()}
                           for w, b in results.items()},
               "ratios": rat, "unit": unit}
    if extra:
        payload.update(extra)
    print(json.dumps(payload))
    return payload
