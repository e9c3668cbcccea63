"""The README's Python quickstart runs as printed, and what its comments claim holds."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_quickstart_runs_and_its_comments_hold():
    blocks = _python_blocks()
    assert len(blocks) == 1, (
        f"README.md: expected one ```python quickstart block, found {len(blocks)}"
    )
    namespace: dict = {"__name__": "__readme__"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(blocks[0], f"{README}:quickstart", "exec"), namespace)

    fc = np.asarray(namespace["fc"])
    assert fc.shape == (84, 84), "quickstart comment: '(84, 84) simulated FC'"
    assert np.all(np.isfinite(fc))
    np.testing.assert_allclose(np.diag(fc), 1.0, atol=1e-5)
    # The comment on the print line states the FC correlation the quickstart reaches; the run is
    # seeded, so the printed value must match it to the two decimals the README gives.
    claimed = re.search(r"print\(.*\)\s*#.*?r\s*=\s*([-0-9.]+)", blocks[0])
    assert claimed, "README quickstart: the print line should state the r it prints"
    value = float(printed.getvalue().strip().splitlines()[-1])
    assert abs(value - float(claimed.group(1))) <= 0.005, (value, claimed.group(1))


def test_readme_fit_data_example_reads_a_subject_table(tmp_path):
    """The README's ``[fit.data]`` example, in the demo config beside a 1200 x 84 table named as
    it says, passes everything ``vbt fit`` checks before compiling; the table stored the other
    way round gives the same FC with ``time_axis = 1``, as the README says."""
    from inference.fit import load_fit_config, setup_fit

    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)
    example = next(b for b in blocks if b.startswith("[fit.data]"))
    table = re.search(r'bold = "([^"]+)"', example).group(1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 84)) @ rng.normal(size=(84, 84)) * 0.1
    np.savetxt(tmp_path / table, x, delimiter="\t")
    demo = (README.parent / "configs" / "fit_hopf_dk84.toml").read_text()
    start = demo.index("[fit.data]")
    end = demo.index("\n[", start + 1)
    cfg_path = tmp_path / "fit_subject.toml"
    cfg_path.write_text(demo[:start] + example + demo[end:])
    setup = setup_fit(load_fit_config(cfg_path))
    assert setup.twin.likelihoods[0].n_timepoints == 1200 and setup.fc.shape == (84, 84)
    np.savetxt(tmp_path / table, x.T, delimiter="\t")
    cfg_path.write_text(demo[:start] + example + "time_axis = 1\n" + demo[end:])
    setup_t = setup_fit(load_fit_config(cfg_path))
    np.testing.assert_allclose(setup_t.fc, setup.fc, atol=1e-12)


def test_readme_names_resolve():
    """Every ``vbt.X`` / ``vbt_jax.X`` / ``inference.X`` the README names exists."""
    import importlib

    text = README.read_text()
    missing = []
    for root, dotted in sorted(
        set(re.findall(r"\b(vbt_jax|vbt|inference)\.([A-Za-z_][\w.]*\w)", text))
    ):
        obj = importlib.import_module("vbt_jax" if root == "vbt" else root)
        for part in dotted.split("."):
            if part in ("py", "toml", "md", "nc", "json", "csv"):
                break
            try:
                obj = getattr(obj, part)
            except AttributeError:
                try:
                    obj = importlib.import_module(f"{obj.__name__}.{part}")
                except (ImportError, AttributeError):
                    missing.append(f"{root}.{dotted}")
                    break
    assert not missing, f"README.md names that do not exist: {missing}"


def _layout_paths() -> list[str]:
    """Paths named in the README's Layout block: top-level entries, and on indented lines the
    leading names (ending in ``/`` or ``.py``, several separated by commas) relative to the
    top-level folder above them."""
    block = re.search(r"## Layout\n+```\n(.*?)```", README.read_text(), flags=re.S).group(1)
    paths, top = [], None
    for line in block.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            top = line.split()[0]
            paths.append(top)
            continue
        if top is None or not top.endswith("/"):
            continue
        for token in re.split(r"[\s,]+", line.strip()):
            token = token.rstrip(":;")
            if token.endswith(("/", ".py")):
                paths.append(top + token)
            else:
                break
    return paths


def test_readme_layout_names_the_tree():
    """Every path in the README's Layout exists, and every subpackage of vbt_jax/ and
    inference/ is in it."""
    root = README.parent
    paths = _layout_paths()
    missing = [p for p in paths if not (root / p).exists()]
    assert not missing, f"README Layout names paths that do not exist: {missing}"
    listed = {p.rstrip("/") for p in paths}
    for pkg in ("vbt_jax", "inference"):
        for init in sorted((root / pkg).glob("*/__init__.py")):
            sub = f"{pkg}/{init.parent.name}"
            assert sub in listed, f"README Layout does not list the subpackage {sub}/"
