"""Predicted effects of interventions on a fitted Hopf twin, over posterior draws and doses.

For every posterior draw ``(a, G)`` of a linearised Stuart-Landau twin and every drug and
dose, the drug changes ``a`` (:meth:`vbt_jax.interventions.Drug.apply`) and the analytic FC
``vbt.hopf_fc_symmetric(a', W, G)`` is summarised per region as global brain connectivity
(GBC: the mean correlation of a region with all the others) and as the mean FC over edges.
The full (draw, intervention, dose, N, N) FC is never stored: draws are processed in chunks
and reduced inside one jitted, ``vmap``-ed function.

With a target FC (e.g. a healthy reference), the distance of each predicted FC to it is
``1 - Pearson r`` of the upper triangles (``distance="corr"``, default) or the Frobenius norm
of the difference of Fisher-z upper triangles (``distance="fisher_z"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import vbt_jax as vbt
from vbt_jax import ConfigError

_DISTANCES = ("corr", "fisher_z")


class Predictions(eqx.Module):
    """Predicted FC summaries per posterior draw, intervention and dose (NumPy arrays).

    Attributes:
        names: intervention names (I,) (static).
        doses: (K,) doses, in the unit of each drug's ``occupancy.ec50``.
        labels: region labels (N,) (static).
        gbc: (D, I, K, N) GBC after the intervention.
        mean_fc: (D, I, K) mean FC over the upper-triangle edges after the intervention.
        gbc_base: (D, N) baseline GBC (no intervention).
        mean_fc_base: (D,) baseline mean FC.
        distance: (D, I, K) distance to ``target_fc`` after the intervention, or None.
        distance_base: (D,) baseline distance to ``target_fc``, or None.
        distance_kind: ``"corr"`` or ``"fisher_z"`` (static).
    """

    names: tuple[str, ...] = eqx.field(static=True)
    doses: np.ndarray
    labels: tuple[str, ...] = eqx.field(static=True)
    gbc: np.ndarray
    mean_fc: np.ndarray
    gbc_base: np.ndarray
    mean_fc_base: np.ndarray
    distance: np.ndarray | None
    distance_base: np.ndarray | None
    distance_kind: str = eqx.field(static=True)

    @property
    def gbc_change(self) -> np.ndarray:
        """(D, I, K, N) GBC change from the draw's own baseline."""
        return self.gbc - self.gbc_base[:, None, None, :]

    @property
    def mean_fc_change(self) -> np.ndarray:
        """(D, I, K) mean FC change from the draw's own baseline."""
        return self.mean_fc - self.mean_fc_base[:, None, None]


def _summaries(fc, iu, target, kind: str):
    """GBC (N,), mean FC over edges, and distance to the target upper triangle (or 0)."""
    n = fc.shape[-1]
    gbc = (fc.sum(-1) - jnp.diagonal(fc, axis1=-2, axis2=-1)) / (n - 1)
    up = fc[..., iu[0], iu[1]]
    mean = up.mean(-1)
    if target is None:
        return gbc, mean, jnp.zeros_like(mean)
    if kind == "corr":
        x = up - up.mean(-1, keepdims=True)
        t = target - target.mean()
        r = (x * t).sum(-1) / jnp.sqrt((x * x).sum(-1) * (t * t).sum())
        dist = 1.0 - r
    else:
        d = jnp.arctanh(jnp.clip(up, -0.999999, 0.999999)) - jnp.arctanh(target)
        dist = jnp.sqrt((d * d).sum(-1))
    return gbc, mean, dist


def predict_interventions(
    a_draws: Any,
    G_draws: Any,
    weights: Any,
    labels: Sequence[str],
    interventions: Mapping[str, Any],
    doses: Any,
    *,
    target_fc: Any = None,
    omega: float = 2.0 * np.pi * 0.05e-3,
    distance: str = "corr",
    chunk: int = 256,
) -> Predictions:
    """Predict GBC, mean FC and distance to a target for each draw, intervention and dose.

    Args:
        a_draws: (D, N) posterior draws of the bifurcation parameter a [1/ms] (all < 0).
        G_draws: (D,) posterior draws of the global coupling G.
        weights: (N, N) symmetric structural weights (as used in the fit).
        labels: (N,) region labels (to place the receptor maps).
        interventions: name -> :class:`vbt_jax.interventions.Drug` acting on ``"a"``
            (e.g. ``psychedelic_5ht2a("hopf")``).
        doses: (K,) doses >= 0, in the unit of each drug's ``occupancy.ec50``.
        target_fc: optional (N, N) reference FC (e.g. healthy group FC).
        omega: oscillator frequency [rad/ms] of the Stuart-Landau model (FC does not depend
            on it; it is carried into the model the drugs act on).
        distance: ``"corr"`` (``1 - r`` of the upper triangles) or ``"fisher_z"`` (Frobenius
            norm of the Fisher-z upper-triangle difference).
        chunk: draws per jitted batch (memory: chunk * I * K * N^2 floats).

    Returns:
        A :class:`Predictions` (float32 values).

    Raises:
        ConfigError: mismatched shapes, no interventions, an intervention that is not a drug
            on ``a``, an unknown distance, negative doses, or a target of the wrong shape.
    """
    from vbt_jax.interventions import Drug
    from vbt_jax.models import StuartLandau

    a = np.asarray(a_draws, dtype=np.float32)
    G = np.asarray(G_draws, dtype=np.float32).reshape(-1)
    W = np.asarray(weights, dtype=np.float32)
    labels = tuple(str(s) for s in labels)
    doses = np.asarray(doses, dtype=np.float32).reshape(-1)
    if a.ndim != 2:
        raise ConfigError(f"predict_interventions: a_draws must be (D, N), got shape {a.shape}")
    D, n = a.shape
    if G.shape != (D,):
        raise ConfigError(f"predict_interventions: G_draws must be ({D},), got shape {G.shape}")
    if W.shape != (n, n):
        raise ConfigError(f"predict_interventions: weights must be ({n}, {n}), got {W.shape}")
    if len(labels) != n:
        raise ConfigError(f"predict_interventions: {len(labels)} labels for {n} regions")
    if not interventions:
        raise ConfigError("predict_interventions: no interventions given")
    if doses.size == 0 or not np.all(np.isfinite(doses) & (doses >= 0)):
        raise ConfigError(f"predict_interventions: doses must be finite and >= 0, got {doses}")
    if distance not in _DISTANCES:
        raise ConfigError(f"predict_interventions: distance must be in {_DISTANCES}")
    for name, drug in interventions.items():
        if not isinstance(drug, Drug) or drug.parameter != ("a",):
            raise ConfigError(
                f"predict_interventions: intervention {name!r} must be a Drug acting on "
                f"('a',) (a Hopf drug), got {type(drug).__name__}"
            )
    iu = np.triu_indices(n, 1)
    target = None
    if target_fc is not None:
        tf = np.asarray(target_fc, dtype=np.float64)
        if tf.shape != (n, n):
            raise ConfigError(
                f"predict_interventions: target_fc must be ({n}, {n}), got {tf.shape}"
            )
        target = jnp.asarray(np.clip(tf[iu], -0.999999, 0.999999), jnp.float32)
    names = tuple(interventions)
    densities = jnp.stack(
        [jnp.asarray(d.regional_density(labels), jnp.float32) for d in interventions.values()]
    )
    Wj = jnp.asarray(W)

    def new_a(a_d, drug, rho):
        model = StuartLandau(a=a_d, omega=omega)
        return jax.vmap(lambda d: drug.apply(model, d, density=rho).a)(jnp.asarray(doses))

    n_i, n_k = len(names), doses.size

    @jax.jit
    def batch(a_b, G_b):
        def draw(a_d, G_d):
            # baseline and every (intervention, dose) go through one batched FC computation,
            # so a zero change gives bit-identical FC (and exactly zero differences)
            A = jnp.concatenate(
                [a_d[None]]
                + [new_a(a_d, drug, densities[i]) for i, drug in enumerate(interventions.values())]
            )
            fcs = jax.vmap(lambda x: vbt.hopf_fc_symmetric(x, Wj, G_d))(A)
            g, m, dist = _summaries(fcs, iu, target, distance)
            base = (g[0], m[0], dist[0])
            after = (
                g[1:].reshape(n_i, n_k, n),
                m[1:].reshape(n_i, n_k),
                dist[1:].reshape(n_i, n_k),
            )
            return base, after

        return jax.vmap(draw)(a_b, G_b)

    pieces = []
    for s in range(0, D, chunk):
        out = batch(jnp.asarray(a[s : s + chunk]), jnp.asarray(G[s : s + chunk]))
        pieces.append(jax.device_get(out))
    (gb, mb, db), (ga, ma, da) = jax.tree_util.tree_map(
        lambda *x: np.concatenate(x, axis=0), *pieces
    )
    return Predictions(
        names=names,
        doses=doses,
        labels=labels,
        gbc=ga,
        mean_fc=ma,
        gbc_base=gb,
        mean_fc_base=mb,
        distance=None if target is None else da,
        distance_base=None if target is None else db,
        distance_kind=distance,
    )


def _interval(x: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray]:
    lo = 0.5 * (1.0 - prob)
    return np.quantile(x, lo, axis=0), np.quantile(x, 1.0 - lo, axis=0)


def change_summary(pred: Predictions, prob: float = 0.9) -> dict[str, np.ndarray]:
    """Posterior means and equal-tailed credible intervals of the predicted changes.

    Args:
        pred: from :func:`predict_interventions`.
        prob: interval mass in (0, 1).

    Returns:
        dict with ``gbc_change_mean``, ``gbc_change_lo``, ``gbc_change_hi`` (I, K, N) and
        ``mean_fc_change_mean``, ``mean_fc_change_lo``, ``mean_fc_change_hi`` (I, K) (the
        dose-response of the mean FC), plus ``prob_gbc_increase`` (I, K, N): the posterior
        probability that the region's GBC rises.

    Raises:
        ConfigError: ``prob`` outside (0, 1).
    """
    if not 0.0 < prob < 1.0:
        raise ConfigError(f"change_summary: prob must be in (0, 1), got {prob}")
    g, m = pred.gbc_change, pred.mean_fc_change
    glo, ghi = _interval(g, prob)
    mlo, mhi = _interval(m, prob)
    return {
        "gbc_change_mean": g.mean(0),
        "gbc_change_lo": glo,
        "gbc_change_hi": ghi,
        "mean_fc_change_mean": m.mean(0),
        "mean_fc_change_lo": mlo,
        "mean_fc_change_hi": mhi,
        "prob_gbc_increase": (g > 0).mean(0),
    }


def _need_distance(pred: Predictions, what: str) -> None:
    if pred.distance is None:
        raise ConfigError(f"{what}: the predictions have no distances; pass target_fc=")


def prob_improves(pred: Predictions) -> np.ndarray:
    """(I, K) posterior probability that the distance to the target drops below baseline.

    Raises:
        ConfigError: predictions made without ``target_fc``.
    """
    _need_distance(pred, "prob_improves")
    return (pred.distance < pred.distance_base[:, None, None]).mean(0)


def ranking(pred: Predictions, dose_index: int) -> np.ndarray:
    """(I,) probability of each intervention being the best (smallest distance) at one dose.

    Ties within a draw go to the first intervention (``argmin``).

    Raises:
        ConfigError: no distances, or ``dose_index`` outside ``[0, K)``.
    """
    _need_distance(pred, "ranking")
    k = len(pred.doses)
    if not -k <= dose_index < k:
        raise ConfigError(f"ranking: dose_index {dose_index} outside [0, {k})")
    best = np.argmin(pred.distance[:, :, dose_index], axis=1)
    return np.bincount(best, minlength=len(pred.names)) / best.size


def to_inference_data(pred: Predictions, attrs: Mapping[str, Any] | None = None):
    """ArviZ InferenceData with a ``predictions`` group (save with ``save_netcdf``).

    Variables: ``gbc``, ``gbc_change`` (draw, intervention, dose, region), ``mean_fc``,
    ``mean_fc_change`` (draw, intervention, dose), ``gbc_base`` (draw, region),
    ``mean_fc_base`` (draw), and with a target ``distance`` (draw, intervention, dose) and
    ``distance_base`` (draw). Coordinates: intervention names, doses, region labels.
    """
    import arviz as az
    import xarray as xr

    d4 = ("draw", "intervention", "dose", "region")
    data = {
        "gbc": (d4, pred.gbc),
        "gbc_change": (d4, pred.gbc_change),
        "mean_fc": (d4[:3], pred.mean_fc),
        "mean_fc_change": (d4[:3], pred.mean_fc_change),
        "gbc_base": (("draw", "region"), pred.gbc_base),
        "mean_fc_base": (("draw",), pred.mean_fc_base),
    }
    if pred.distance is not None:
        data["distance"] = (d4[:3], pred.distance)
        data["distance_base"] = (("draw",), pred.distance_base)
    coords = {
        "draw": np.arange(pred.gbc.shape[0]),
        "intervention": list(pred.names),
        "dose": np.asarray(pred.doses),
        "region": list(pred.labels),
    }
    at = {"distance_kind": pred.distance_kind, **dict(attrs or {})}
    ds = xr.Dataset(data, coords=coords, attrs=at)
    return az.InferenceData(predictions=ds)


predictions_to_inference_data = to_inference_data
