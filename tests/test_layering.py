"""The dependency between the two packages runs one way: vbt_jax never imports inference (nor
numpyro), and inference builds only on vbt_jax's public modules.

Static checks read the source with ``ast`` (imports, ``importlib.import_module`` and
``__import__`` calls with a literal name); the runtime checks run in fresh interpreters, so
nothing a previous test imported can hide an import.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VBT = ROOT / "vbt_jax"
INF = ROOT / "inference"


def _imported_modules(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(root).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    else:
        package = package.removesuffix(".__init__")
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Call):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            if name in ("import_module", "__import__") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    out.append((node.lineno, arg.value))
    return out


def _sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def test_import_scanner_sees_every_kind_of_import(tmp_path):
    """The static checks below can fail: the scanner finds plain, from, relative and
    importlib imports of a forbidden name."""
    pkg = tmp_path / "vbt_jax" / "sub"
    pkg.mkdir(parents=True)
    f = pkg / "mod.py"
    f.write_text(
        textwrap.dedent(
            """
            import inference
            from inference._cli import x
            from ..models import hopf
            import importlib
            m = importlib.import_module("inference._cli")
            """
        )
    )
    mods = [m for _, m in _imported_modules(f, tmp_path)]
    assert "inference" in mods and "inference._cli" in mods
    assert "vbt_jax.models.hopf" in mods


def test_vbt_jax_never_names_inference_or_numpyro():
    bad = [
        f"{p.relative_to(ROOT)}:{line} imports {mod}"
        for p in _sources(VBT)
        for line, mod in _imported_modules(p)
        if mod.split(".")[0] in ("inference", "numpyro", "arviz", "optax")
    ]
    assert not bad, "\n".join(bad)


def test_vbt_jax_sets_no_xla_flags():
    """XLA flags (host device count for parallel chains) are the inference layer's business."""
    bad = [str(p.relative_to(ROOT)) for p in _sources(VBT) if "XLA_FLAGS" in _code(p)]
    assert not bad


def _code(path: Path) -> str:
    """The source without docstrings and comments (string constants that are statements)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                body[0].value.value = ""
    return ast.unparse(tree)


def test_inference_uses_only_public_vbt_jax_modules():
    """What inference needs from vbt_jax is public: no ``vbt_jax._private`` module."""
    bad = [
        f"{p.relative_to(ROOT)}:{line} imports {mod}"
        for p in _sources(INF)
        for line, mod in _imported_modules(p)
        if mod.startswith("vbt_jax.") and any(part.startswith("_") for part in mod.split(".")[1:2])
    ]
    assert not bad, "\n".join(bad)


def test_experiment_schema_does_not_list_the_inference_sections():
    from vbt_jax.config._schema import _TOP

    assert "fit" not in _TOP and "predict" not in _TOP


def _fresh(code: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_vbt_jax_and_its_cli_imports_no_inference():
    res = _fresh(
        """
        import json, sys
        import vbt_jax, vbt_jax._cli, vbt_jax.jobs, vbt_jax.config
        from vbt_jax._cli import BUILTIN, plugin_sections
        sections = plugin_sections()  # entry-point metadata only
        print(json.dumps({
            "loaded": sorted(m for m in sys.modules
                             if m.split(".")[0] in ("inference", "numpyro", "arviz")),
            "sections": list(sections),
        }))
        """
    )
    assert res["loaded"] == []
    assert {"fit", "predict"} <= set(res["sections"])


def test_vbt_simulate_runs_without_importing_inference(tmp_path):
    """A whole ``vbt simulate`` (parser, config, run, run folder) never imports inference."""
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(
        textwrap.dedent(
            """
            [simulation]
            dt = 1.0
            duration = 20.0
            [connectome]
            source = "dk84"
            [model]
            name = "hopf"
            [model.initial_state]
            x = 0.0
            y = 0.0
            [monitors]
            tavg = { period = 10.0 }
            """
        )
    )
    res = _fresh(
        f"""
        import json, sys, contextlib, io
        from vbt_jax._cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            rc = main(["simulate", {str(cfg)!r}, "--out", {str(tmp_path / "run")!r},
                       "--quiet", "--no-figures"])
        print(json.dumps({{"rc": rc, "loaded": sorted(
            m for m in sys.modules if m.split(".")[0] in ("inference", "numpyro"))}}))
        """
    )
    assert res == {"rc": 0, "loaded": []}


def test_registered_commands_load_before_any_backend_starts():
    """``vbt fit`` sets XLA_FLAGS in its ``prepare`` hook, after its module is imported:
    importing the command modules must not start a JAX backend (the flag would be ignored)."""
    res = _fresh(
        """
        import json
        from importlib import metadata
        import jax._src.xla_bridge as xb
        cmds = {ep.name: ep.load() for ep in metadata.entry_points(group="vbt.commands")}
        print(json.dumps({"names": sorted(cmds), "backends": list(xb._backends)}))
        """
    )
    assert {"fit", "predict"} <= set(res["names"])
    assert res["backends"] == []


@pytest.mark.parametrize("name", ["fit", "predict"])
def test_registered_commands_are_commands(name):
    from importlib import metadata

    from vbt_jax.jobs import Command

    (ep,) = [e for e in metadata.entry_points(group="vbt.commands") if e.name == name]
    cmd = ep.load()
    assert isinstance(cmd, Command) and cmd.name == name and cmd.validate is not None


# ConfigError is for configuration: the TOML readers and the job/CLI edge that turns a config
# into library calls. Library code raises the specific ValueError kinds (DataError and its
# ShapeError, LabelError, ConnectomeError; ArgumentError).
CONFIG_EDGE = {
    "vbt_jax/config/_build.py",
    "vbt_jax/config/_load.py",
    "vbt_jax/config/_schema.py",
    "vbt_jax/config/_sections.py",
    "vbt_jax/jobs.py",
    "vbt_jax/_cli.py",
    "vbt_jax/_runfolder.py",
    "inference/fit/_cli.py",
    "inference/fit/_config.py",
    "inference/fit/_setup.py",
    "inference/treatment/_cli.py",
    "inference/treatment/_config.py",
    "inference/treatment/_twin.py",
}


def _raised_names(path: Path) -> list[tuple[int, str]]:
    """(line, name) of every ``raise Name(...)`` / ``raise Name`` in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name):
                out.append((node.lineno, exc.id))
    return out


def test_config_error_is_raised_only_at_the_config_edge():
    bad = []
    for pkg in (VBT, INF):
        for path in sorted(pkg.rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in CONFIG_EDGE:
                continue
            bad += [f"{rel}:{ln}" for ln, name in _raised_names(path) if name == "ConfigError"]
    assert not bad, f"ConfigError raised outside the configuration edge: {bad}"
    # the list of edge files is not stale
    assert all((ROOT / p).exists() for p in CONFIG_EDGE)


# One concept, one implementation: the numerical formulas below are written once, and every
# caller (library, inference, notebooks, benchmarks) goes through that one copy.
NUMERIC_TREES = (VBT, INF, ROOT / "notebooks", ROOT / "benchmarks")


def _numeric_sources() -> list[Path]:
    return [p for tree in NUMERIC_TREES if tree.exists() for p in _sources(tree)]


def test_one_fisher_transform():
    """``arctanh`` (the Fisher z) is called in one module: ``vbt_jax.features.fisher_z``'s."""
    import re

    hits = [
        p.relative_to(ROOT).as_posix()
        for p in _numeric_sources()
        if re.search(r"\b(arctanh|atanh)\b", _code(p))
    ]
    assert hits == ["vbt_jax/features/_fc.py"], hits


def test_one_workaround_for_the_lapack_deadlock():
    """The jaxlib CPU deadlock is worked around in one module, which alone factors the Hopf
    block (``cho_factor``) and names the deadlock; callers use the public Hopf functions."""
    lapack = "vbt_jax/_linear/_lapack.py"
    named = [
        p.relative_to(ROOT).as_posix()
        for p in _numeric_sources()
        if "deadlock" in p.read_text().lower()
    ]
    assert named == [lapack], named
    assert "jaxlib 0.10" in (ROOT / lapack).read_text()
    factored = [
        p.relative_to(ROOT).as_posix() for p in _numeric_sources() if "cho_factor" in _code(p)
    ]
    assert factored == [lapack], factored


def test_pearson_r_of_two_vectors_is_not_rewritten():
    """``corrcoef`` is only used for the FC of a time series (``rowvar=False``); the r of two
    vectors or upper triangles is ``vbt_jax.features.pearson`` / ``upper_r`` /
    ``fc_correlation``."""
    bad = []
    for p in _numeric_sources():
        for node in ast.walk(ast.parse(p.read_text(), filename=str(p))):
            if not isinstance(node, ast.Call):
                continue
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            if name == "corrcoef" and not any(k.arg == "rowvar" for k in node.keywords):
                bad.append(f"{p.relative_to(ROOT)}:{node.lineno}")
    assert not bad, bad
