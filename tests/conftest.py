import itertools
import os
import shutil
import tempfile

import jax
import jax.random as jr
import pytest

from vbt_jax._cli import _use_compilation_cache

# the test files with the longest tests and fixtures (each about 2-4 minutes on one core, 2026-12)
_LONGEST_FILES = (
    "test_notebooks.py",
    "test_inference_calibration.py",
    "test_inference_core.py",
    "test_virtual_trial.py",
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Tests that share a module-scoped fixture of their module (directly or through other such
    fixtures) form one ``xdist_group``: with ``--dist loadgroup`` (``addopts``) they run on one
    pytest-xdist worker, which builds each expensive fixture (a NUTS run, a virtual trial) once
    instead of once per worker."""
    parent: dict = {}

    def find(a):
        while parent.setdefault(a, a) != a:
            a = parent[a]
        return a

    shared = {}
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        module = getattr(item, "module", None)
        if info is None or module is None:
            continue
        names = [
            (module.__name__, name)
            for name in info.names_closure
            for fdef in info.name2fixturedefs.get(name, ())[-1:]
            if fdef.scope == "module" and fdef.baseid == item.nodeid.split("::")[0]
        ]
        if names:
            shared[item] = names[0]
            for other in names[1:]:
                parent[find(other)] = find(names[0])
    for item, key in shared.items():
        module, name = find(key)
        item.add_marker(pytest.mark.xdist_group(f"{module}.{name}"))

    # longest first (``--no-loadscope-reorder`` keeps this order): a long test started last
    # would leave the other worker idle at the end
    def rank(item):
        path = item.nodeid.split("::")[0]
        first = next((i for i, f in enumerate(_LONGEST_FILES) if path.endswith(f)), None)
        if first is not None:
            return first
        return len(_LONGEST_FILES) + (0 if item.get_closest_marker("slow") else 1)

    items.sort(key=rank)


_CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"
_MIN_TIME_ENV = "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"


def pytest_configure(config):
    """One persistent JAX compilation cache for the test session, then CPU shares per worker.

    The controller makes a fresh cache folder and hands it to its workers, notebook kernels and
    CLI subprocesses through ``JAX_COMPILATION_CACHE_DIR``: what one compiled is loaded, not
    recompiled, by the others. A quick fit of the demo config compiles ~360 programs (33 of its
    65 s); a second one, as in the notebooks and the fit-config tests, took 34 s instead of 58.
    The folder is removed at the end; a cache folder set by the caller is used and kept.
    """
    if _CACHE_ENV not in os.environ:
        path = tempfile.mkdtemp(prefix="vbt-jax-test-cache-")
        os.environ[_CACHE_ENV] = path
        config._vbt_jax_cache = path
    # every program, however quick to compile (most of a fit's take ~0.1 s), also in the
    # workers, notebook kernels and CLI subprocesses, which read it from the environment
    os.environ.setdefault(_MIN_TIME_ENV, "0")
    _use_compilation_cache(os.environ)  # the CLI's set-up, for this process
    _pin_worker()


def pytest_unconfigure(config):
    path = getattr(config, "_vbt_jax_cache", None)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
        os.environ.pop(_CACHE_ENV, None)


def _pin_worker():
    """Under pytest-xdist, give each worker its own share of the CPUs.

    XLA's CPU client sizes its thread pool by the CPUs a process may run on. Two workers whose
    pools each span every core oversubscribe them, and the many small sequential programs of
    NUTS then run several times slower than on one core of their own. Pinning happens before
    any JAX computation, so the pool is sized to the share; notebook kernels and CLI
    subprocesses inherit it.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker.startswith("gw") or count < 2 or not hasattr(os, "sched_setaffinity"):
        return
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < count:
        return
    os.sched_setaffinity(0, cpus[int(worker[2:]) % count :: count])


@pytest.fixture
def getkey():
    """Fresh, distinct PRNG keys for each call within a test (diffrax's pattern)."""
    counter = itertools.count()
    return lambda: jr.key(next(counter))


@pytest.fixture
def x64():
    enable = getattr(jax, "enable_x64", None)
    ctx = enable(True) if enable is not None else jax.experimental.enable_x64()
    with ctx:
        yield


DEMO_CONFIG = os.path.join(os.path.dirname(__file__), os.pardir, "configs", "fit_hopf_dk84.toml")
QUICK_DEMO_GROUP = pytest.mark.xdist_group("quick_demo_fit")


@pytest.fixture(scope="session")
def quick_demo_fit(tmp_path_factory):
    """The run folder of ``vbt fit configs/fit_hopf_dk84.toml --quick``, fitted once per worker.

    Every test that reads it carries ``QUICK_DEMO_GROUP`` (one ``xdist_group``), so with
    ``--dist loadgroup`` one worker fits it once for all of them. The readers must not change it.
    """
    from vbt_jax._cli import main

    out = tmp_path_factory.mktemp("quick_demo") / "fit"
    argv = ["fit", os.path.abspath(DEMO_CONFIG), "--quick", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    return out
