"""hk.config is per thread, as in Haiku 0.0.17 (issue 13 item 8).

Haiku black box: a `set`/`context` in one thread is invisible to the others; a thread starts
from the main thread's current settings.
"""

import threading

import jax
import pytest

import hk_core as hk


def _reserved_keys_after_one_draw() -> int:
    """How many keys the sequence split at once (rng_reserve_size), seen through a transform."""
    def f():
        hk.next_rng_key()
        return len(hk.maybe_get_rng_sequence_state()[1]) + 1

    return hk.transform(f).apply({}, jax.random.PRNGKey(0))


def _repr_of_linear() -> str:
    return hk.transform(lambda: repr(hk.Linear(1))).apply({}, None)


def _in_thread(fn):
    out = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join()
    return out[0]


@pytest.fixture(autouse=True)
def _restore_main_thread_config():
    with hk.config.context():
        yield


def test_context_in_one_thread_does_not_change_another_running_concurrently():
    inside_context, main_done = threading.Event(), threading.Event()
    results = {}

    def worker():
        with hk.config.context(rng_reserve_size=5, module_auto_repr=False):
            inside_context.set()
            main_done.wait(timeout=60)
            results["worker"] = (_reserved_keys_after_one_draw(), _repr_of_linear()[:1])

    thread = threading.Thread(target=worker)
    thread.start()
    assert inside_context.wait(timeout=60)
    results["main"] = (_reserved_keys_after_one_draw(), _repr_of_linear())
    main_done.set()
    thread.join()
    assert results == {"worker": (5, "<"), "main": (1, "Linear(output_size=1)")}


def test_set_in_a_thread_is_invisible_to_main_and_to_later_threads():
    assert _in_thread(lambda: (hk.config.set(rng_reserve_size=7), _reserved_keys_after_one_draw())
                      ) == (None, 7)
    assert _reserved_keys_after_one_draw() == 1
    assert _in_thread(_reserved_keys_after_one_draw) == 1


def test_experimental_switch_in_a_thread_is_invisible_to_main():
    assert _in_thread(lambda: hk.experimental.module_auto_repr(False)) is True
    assert _repr_of_linear() == "Linear(output_size=1)"


def test_new_thread_starts_from_main_thread_settings():
    with hk.config.context(rng_reserve_size=3):
        assert _in_thread(_reserved_keys_after_one_draw) == 3
    assert _in_thread(_reserved_keys_after_one_draw) == 1


def test_check_jax_usage_set_in_main_is_seen_by_new_thread():
    previous = hk.experimental.check_jax_usage(True)
    try:
        assert _in_thread(lambda: hk.config.get_config().check_jax_usage) is True
    finally:
        hk.experimental.check_jax_usage(previous)
