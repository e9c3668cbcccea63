"""vbt_jax.jobs, the pieces every ``vbt`` job shares, and the checks every job makes of its
output folder before it computes anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vbt_jax import ArgumentError, ConfigError
from vbt_jax._cli import main
from vbt_jax.jobs import RunFolder, Table, read_toml

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


# --------------------------------------------------------------------------- Table


def test_table_errors_name_file_section_and_key(tmp_path):
    path = tmp_path / "x.toml"
    with pytest.raises(ConfigError, match=r"x.toml: \[fit.nuts\] unknown key 'warmpu' \(did you "):
        Table(path, "fit.nuts", {"warmpu": 3}, ("warmup", "samples"))
    t = Table(path, "fit.nuts", {"warmup": -3, "flag": 1, "f": "nope.npz"}, ("warmup", "flag", "f"))
    with pytest.raises(ConfigError, match=r"\[fit.nuts\] warmup must be an integer >= 1, got -3"):
        t.integer("warmup")
    assert t.integer("warmup", lower=None) == -3 and t.integer("samples", None) is None
    with pytest.raises(ConfigError, match="flag must be true or false"):
        t.boolean("flag")
    with pytest.raises(ConfigError, match=f"f 'nope.npz' is neither one of 'dk84' nor an existing "
                       f"file \\(resolved to {tmp_path / 'nope.npz'}\\)"):  # fmt: skip
        t.file("f", tmp_path, names=("dk84",))
    (tmp_path / "nope.npz").write_text("")
    assert t.file("f", tmp_path, names=("dk84",)) == (tmp_path / "nope.npz").resolve()


def test_read_toml_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="missing.toml: config file not found"):
        read_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[simulation\n")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        read_toml(bad)
    with pytest.raises(ConfigError, match="is a folder"):
        read_toml(tmp_path)


# --------------------------------------------------------------------------- RunFolder


def test_run_folder_refuses_a_file_a_missing_parent_and_an_existing_folder(tmp_path):
    f = tmp_path / "a_file"
    f.write_text("x")
    with pytest.raises(ArgumentError, match="exists and is a file"):
        RunFolder.prepare(f)
    with pytest.raises(ArgumentError, match=f"parent folder {tmp_path / 'typo'} does not exist"):
        RunFolder.prepare(tmp_path / "typo" / "run")
    assert not (tmp_path / "typo").exists()  # nothing made elsewhere by a mistyped path
    (tmp_path / "done").mkdir()
    with pytest.raises(ArgumentError, match="already exists; pass --force"):
        RunFolder.prepare(tmp_path / "done")
    assert RunFolder.prepare(tmp_path / "done", force=True).path == (tmp_path / "done").resolve()


def test_run_folder_writes_config_and_versions_atomically(tmp_path):
    folder = RunFolder.prepare(tmp_path / "run")
    with pytest.raises(RuntimeError, match="boom"):
        with folder.write(config_text="a = 1\n") as partial:
            assert (partial / "config.toml").read_text() == "a = 1\n"
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its partial
    with folder.write(config_text="a = 1\n") as partial:
        (partial / "x.txt").write_text("y")
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == ["config.toml", "versions.json", "x.txt"]
    assert "jax" in json.loads((tmp_path / "run" / "versions.json").read_text())
    # a folder that appeared in between is not overwritten without force
    with pytest.raises(ArgumentError, match="already exists"):
        with folder.write():
            pass


# --------------------------------------------------------------------------- jobs


def _forbid(monkeypatch, target: str, attr: str):
    import importlib

    def never(*args, **kwargs):
        raise AssertionError(f"{target}.{attr} ran although the output path was invalid")

    monkeypatch.setattr(importlib.import_module(target), attr, never)


@pytest.mark.parametrize(
    ("command", "config", "module", "attr"),
    [
        ("simulate", "hopf_dk84.toml", "vbt_jax.config", "build_experiment"),
        ("fit", "fit_hopf_dk84.toml", "inference.fit._job", "fit_run_folder"),
        ("predict", "predict_dk84.toml", "inference.treatment._job", "predict_run_folder"),
    ],
)
def test_every_job_checks_its_output_before_computing(
    tmp_path, monkeypatch, capsys, command, config, module, attr
):
    _forbid(monkeypatch, module, attr)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    for out, message in [
        (blocker, "exists and is a file"),
        (tmp_path / "no" / "such" / "run", "does not exist"),
    ]:
        rc = main([command, str(CONFIGS / config), "--out", str(out), "--quiet"])
        err = capsys.readouterr().err
        assert rc == 1 and f"vbt {command}: error:" in err and message in err, err
        assert str(out.parent.resolve() if message == "does not exist" else out) in err
    assert not (tmp_path / "no").exists()
    assert blocker.read_text() == "x"


def test_runs_folder_ships_with_the_repository():
    """The README's first command writes ``runs/demo``: the ``runs`` folder must exist in a
    fresh clone, since a missing parent folder is an error."""
    runs = CONFIGS.parent / "runs"
    assert runs.is_dir() and (runs / "README.md").is_file()


def test_find_config_from_outside_the_repository(tmp_path, monkeypatch):
    """Notebooks run from a temporary folder find the shipped configs beside the package."""
    from vbt_jax.config import find_config

    monkeypatch.chdir(tmp_path)
    assert find_config("hopf_dk84.toml") == (CONFIGS / "hopf_dk84.toml").resolve()
    with pytest.raises(FileNotFoundError, match="configs/nope.toml not found"):
        find_config("nope.toml")
