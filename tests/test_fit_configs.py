"""Every shipped fit config runs end to end with tiny settings (``vbt fit --quick``)."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import pytest

from vbt_jax._cli import main

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.toml"))
FIT_CONFIGS = [p for p in CONFIGS if "fit" in tomllib.loads(p.read_text())]


def test_fit_configs_present():
    assert {p.stem for p in FIT_CONFIGS} >= {"fit_hopf_dk84", "fit_hopf_fc_meg_dk84"}


@pytest.mark.slow
@pytest.mark.parametrize("cfg_path", FIT_CONFIGS, ids=[p.stem for p in FIT_CONFIGS])
def test_fit_config_runs_quick(tmp_path, cfg_path):
    out = tmp_path / "fit"
    assert main(["fit", str(cfg_path), "--quick", "--out", str(out), "--quiet"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {
        "posterior.nc",
        "summary.csv",
        "summary.md",
        "fit_quality.json",
        "config.toml",
        "versions.json",
        "fc_predicted.npy",
    } <= names
    q = json.loads((out / "fit_quality.json").read_text())
    # even 50 draws of a quick run must beat a structure-free FC: the SC alone gives r ~ 0.46
    assert q["fc_r_heldout"] > 0.5
    assert 0.0 <= q["heldout_coverage_90"] <= 1.0
    assert math.isfinite(q["sim_fc_r_all"])
    figs = {p.name for p in (out / "figures").iterdir()}
    assert {"prior_posterior.png", "trace_rank.png", "fc_fit.png", "regional_a.png"} <= figs
    if "band_power_r" in q:
        assert q["band_power_r"] > 0.5 and "band_power_fit.png" in figs
    assert not list(tmp_path.glob("*.partial-*"))
    assert not (tmp_path / "fit.checkpoint").exists()
