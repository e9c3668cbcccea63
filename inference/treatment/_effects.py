"""Predicted effects of interventions on a fitted Hopf twin, over posterior draws and doses.

For every posterior draw ``(a, G)`` of a linearised Stuart-Landau twin and every drug and
dose, the drug changes ``a`` (:meth:`vbt_jax.interventions.Drug.apply`) and the analytic FC
``vbt.hopf_fc_symmetric(a', W, G)`` is summarised per region as global brain connectivity
(GBC: the mean correlation of a region with all the others) and as the mean FC over edges.
The full (draw, intervention, dose, N, N) FC is never stored: draws are processed in chunks
and reduced inside one jitted, ``vmap``-ed function.

With a target FC (e.g. a healthy reference), the distance of each predicted FC to it is
``1 - Pearson r`` of the upper triangles (``distance="corr"``, default) or the Frobenius norm
of the difference of Fisher-z upper triangles (``distance="fisher_z"``). The posterior
summaries of the predictions are in :mod:`._summary`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import vbt_jax as vbt
from vbt_jax import ArgumentError, ShapeError

_DISTANCES = ("corr", "fisher_z")


class Predictions(eqx.Module):
    """Predicted summaries per posterior draw, intervention and dose (NumPy arrays).

    Attributes:
        names: intervention names (I,) (static).
        doses: (K,) doses, in the unit of each drug's ``occupancy.ec50`` (lesions and
            stimulation do not depend on the dose: their predictions repeat along it).
        labels: region labels (N,) (static).
        gbc: (D, I, K, N) GBC after the intervention (NaN where the network is unstable).
        mean_fc: (D, I, K) mean FC over the upper-triangle edges after the intervention.
        gbc_base: (D, N) baseline GBC (no intervention).
        mean_fc_base: (D,) baseline mean FC.
        distance: (D, I, K) distance to ``target_fc`` after the intervention, or None.
        distance_base: (D,) baseline distance to ``target_fc``, or None.
        distance_kind: ``"corr"`` or ``"fisher_z"`` (static).
        kinds: (I,) ``"drug"``, ``"lesion"`` or ``"stimulation"`` (static).
        fc_change_mean: (I, K, N, N) posterior mean FC change (over the stable draws).
        unstable: (D, I, K) bool: the intervention pushes the network past the bifurcation
            (no stationary state; its summaries are NaN).
        band_names: names of the frequency bands (static; empty without bands).
        band_power: (D, I, K, B, N) relative band power of ``x`` after the intervention, or
            None.
        band_power_base: (D, B, N) baseline relative band power, or None.
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
    kinds: tuple[str, ...] = eqx.field(static=True, default=())
    fc_change_mean: np.ndarray | None = None
    unstable: np.ndarray | None = None
    band_names: tuple[str, ...] = eqx.field(static=True, default=())
    band_power: np.ndarray | None = None
    band_power_base: np.ndarray | None = None

    @property
    def gbc_change(self) -> np.ndarray:
        """(D, I, K, N) GBC change from the draw's own baseline."""
        return self.gbc - self.gbc_base[:, None, None, :]

    @property
    def mean_fc_change(self) -> np.ndarray:
        """(D, I, K) mean FC change from the draw's own baseline."""
        return self.mean_fc - self.mean_fc_base[:, None, None]

    @property
    def band_power_change(self) -> np.ndarray | None:
        """(D, I, K, B, N) change of the relative band power, or None without bands."""
        if self.band_power is None:
            return None
        return self.band_power - self.band_power_base[:, None, None]

    @property
    def prob_unstable(self) -> np.ndarray:
        """(I, K) share of posterior draws the intervention pushes past the bifurcation."""
        if self.unstable is None:
            return np.zeros(self.mean_fc.shape[1:])
        return self.unstable.mean(0)


def _summaries(fc, iu, target, kind: str):
    """GBC (N,), mean FC over edges, and distance to the (N, N) target FC (or 0)."""
    n = fc.shape[-1]
    gbc = (fc.sum(-1) - jnp.diagonal(fc, axis1=-2, axis2=-1)) / (n - 1)
    up = fc[..., iu[0], iu[1]]
    mean = up.mean(-1)
    if target is None:
        return gbc, mean, jnp.zeros_like(mean)
    if kind == "corr":
        dist = 1.0 - vbt.features.fc_correlation(fc, target)
    else:
        d = vbt.features.fisher_z(up) - vbt.features.fisher_z(target[iu[0], iu[1]])
        dist = jnp.sqrt((d * d).sum(-1))
    return gbc, mean, dist


def gbc_from_z(z: Any, n: int) -> np.ndarray:
    """(..., N) GBC (mean correlation with the other regions) from (..., E) Fisher-z edges."""
    z = jnp.asarray(z)
    iu = np.triu_indices(n, 1)
    r = jnp.tanh(z)
    m = jnp.zeros(z.shape[:-1] + (n, n), r.dtype).at[..., iu[0], iu[1]].set(r)
    return (m + jnp.swapaxes(m, -1, -2)).sum(-1) / (n - 1)


def _band_power(w_set, w_index, omega, bands_hz):
    """Jitted ``(A (D, M, N), G (D,)) -> (D, M, B, N)``: the relative band power of ``x`` of
    every draw and item by :func:`vbt_jax.hopf_band_power` (NaN past the bifurcation).

    A call of its own, after the FC batch has returned: its eigendecompositions and the FC's
    Cholesky factorisations are never batched LAPACK calls of one program (see
    :func:`vbt_jax.hopf_covariance_symmetric` on batching).

    Args:
        w_set: (S, N, N) distinct weights; w_index: (M,) each item's index into ``w_set``;
        omega: rad/ms; bands_hz: (B, 2) Hz.
    """

    def item(a_j, w_j, G_d):
        return vbt.hopf_band_power(a_j, omega, w_set[w_j], G_d, 1.0, bands_hz, symmetric=True)

    def draw(a_d, G_d):
        return jax.vmap(item, in_axes=(0, 0, None))(a_d, w_index, G_d)

    return jax.jit(jax.vmap(draw))


def _effects(interventions, labels, W, omega, doses, fname):
    """For each intervention: ``(kind, a_fn, weights)``.

    ``a_fn(a_d) -> (K, N)`` gives the bifurcation parameters at every dose; ``weights`` is the
    (N, N) structural matrix under the intervention (NumPy; the input for drugs/stimulation).
    Raises ArgumentError for an intervention the linearised Hopf twin cannot represent.
    """
    from vbt_jax import Connectome
    from vbt_jax.interventions import Drug, Lesion, Stimulation
    from vbt_jax.models import StuartLandau

    n = W.shape[0]
    dj = jnp.asarray(doses)
    out = []
    for name, iv in interventions.items():
        if isinstance(iv, Drug):
            if iv.parameter != ("a",):
                raise ArgumentError(
                    f"{fname}: intervention {name!r} must be a Drug acting on ('a',) (a Hopf "
                    f"drug, e.g. psychedelic_5ht2a('hopf')), got parameters {iv.parameter}"
                )
            rho = jnp.asarray(iv.regional_density(labels), jnp.float32)

            def a_fn(a_d, drug=iv, rho=rho):
                model = StuartLandau(a=a_d, omega=omega)
                return jax.vmap(lambda d: drug.apply(model, d, density=rho).a)(dj)

            out.append(("drug", a_fn, W))
        elif isinstance(iv, Lesion):
            conn = Connectome(weights=W, lengths=np.zeros_like(W), labels=tuple(labels))
            Wl = np.asarray(iv.apply(conn).weights, np.float32)

            def a_fn(a_d):
                return jnp.broadcast_to(a_d, (dj.size, n))

            out.append(("lesion", a_fn, Wl))
        elif isinstance(iv, Stimulation):
            probe = StuartLandau(a=jnp.zeros(n), omega=omega)
            if iv.parameter_for(probe) != "a":
                raise ArgumentError(
                    f"{fname}: stimulation {name!r} must act on the Hopf bifurcation parameter "
                    f"'a', got parameter {iv.parameter!r}"
                )
            off = jnp.asarray(iv.offset(n, labels), jnp.float32)

            def a_fn(a_d, off=off):
                return jnp.broadcast_to(a_d + off, (dj.size, n))

            out.append(("stimulation", a_fn, W))
        else:
            raise ArgumentError(
                f"{fname}: intervention {name!r} must be a Drug acting on ('a',) (a Hopf drug), "
                f"a Lesion or a Stimulation of 'a', got {type(iv).__name__}"
            )
    return out


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
    bands_hz: Mapping[str, tuple[float, float]] | None = None,
    chunk: int = 64,
    progress: Any = None,
) -> Predictions:
    """Predict GBC, mean FC, band power and distance to a target per draw, intervention, dose.

    Every posterior draw ``(a, G)`` of a linearised Stuart-Landau twin is changed by each
    intervention: a :class:`~vbt_jax.interventions.Drug` on ``a`` scales or shifts ``a`` by
    its receptor map and the dose's occupancy; a :class:`~vbt_jax.interventions.Lesion`
    scales structural weights (dose-independent); a
    :class:`~vbt_jax.interventions.Stimulation` of ``a`` shifts the targets' ``a`` while it is
    on (the prediction is the stationary state *during* a long stimulation, dose-independent).
    The analytic FC ``corr((-B)^-1)`` (:func:`vbt_jax.hopf_fc_symmetric`) and, with
    ``bands_hz``, the relative band power of ``x`` (:func:`vbt_jax.hopf_band_power`) follow.
    An intervention that pushes a draw past the bifurcation (no stationary state) gives NaN
    summaries and is flagged in ``unstable``.

    Args:
        a_draws: (D, N) posterior draws of the bifurcation parameter a [1/ms] (all < 0).
        G_draws: (D,) posterior draws of the global coupling G.
        weights: (N, N) symmetric structural weights (as used in the fit).
        labels: (N,) region labels (to place receptor maps and lesion/stimulation targets).
        interventions: name -> Drug on ``"a"``, Lesion or Stimulation (see above).
        doses: (K,) doses >= 0, in the unit of each drug's ``occupancy.ec50``.
        target_fc: optional (N, N) reference FC (e.g. healthy group FC).
        omega: oscillator frequency [rad/ms] of the Stuart-Landau model (FC does not depend
            on it; the band powers do).
        distance: ``"corr"`` (``1 - r`` of the upper triangles) or ``"fisher_z"`` (Frobenius
            norm of the Fisher-z upper-triangle difference).
        bands_hz: optional name -> (lo, hi) frequency bands [Hz] for the band powers.
        chunk: draws per jitted batch (memory: chunk * (1 + I K) * N^2 floats).
        progress: optional callable ``progress(done_draws)`` called after each batch.

    Returns:
        A :class:`Predictions` (float32 values).

    Raises:
        ArgumentError: mismatched shapes, no interventions, an intervention the linearised
            Hopf twin cannot represent, an unknown distance, negative doses, a malformed band
            or a target of the wrong shape.
    """
    fname = "predict_interventions"
    a = np.asarray(a_draws, dtype=np.float32)
    G = np.asarray(G_draws, dtype=np.float32).reshape(-1)
    W = np.asarray(weights, dtype=np.float32)
    labels = tuple(str(s) for s in labels)
    doses = np.asarray(doses, dtype=np.float32).reshape(-1)
    if a.ndim != 2:
        raise ShapeError(f"{fname}: a_draws must be (D, N), got shape {a.shape}")
    D, n = a.shape
    if G.shape != (D,):
        raise ShapeError(f"{fname}: G_draws must be ({D},), got shape {G.shape}")
    if W.shape != (n, n):
        raise ShapeError(f"{fname}: weights must be ({n}, {n}), got {W.shape}")
    if len(labels) != n:
        raise ArgumentError(f"{fname}: {len(labels)} labels for {n} regions")
    if not interventions:
        raise ArgumentError(f"{fname}: no interventions given")
    if doses.size == 0 or not np.all(np.isfinite(doses) & (doses >= 0)):
        raise ArgumentError(f"{fname}: doses must be finite and >= 0, got {doses}")
    if distance not in _DISTANCES:
        raise ArgumentError(f"{fname}: distance must be in {_DISTANCES}")
    band_names: tuple[str, ...] = ()
    bands = None
    if bands_hz:
        band_names = tuple(bands_hz)
        bands = np.asarray([bands_hz[b] for b in band_names], np.float64)
        if bands.shape != (len(band_names), 2) or not np.all(
            np.isfinite(bands) & (bands[:, :1] >= 0) & (bands[:, :1] < bands[:, 1:])
        ):
            raise ArgumentError(f"{fname}: bands_hz must map names to (lo, hi) Hz, got {bands_hz}")
    effects = _effects(interventions, labels, W, omega, doses, fname)
    iu = np.triu_indices(n, 1)
    target = None
    if target_fc is not None:
        tf = np.asarray(target_fc, dtype=np.float64)
        if tf.shape != (n, n):
            raise ShapeError(f"{fname}: target_fc must be ({n}, {n}), got {tf.shape}")
        target = jnp.asarray(tf, jnp.float32)
    names = tuple(interventions)
    kinds = tuple(e[0] for e in effects)
    # distinct weight matrices (the input, then one per lesion) and each item's index into them
    w_list = [W]
    w_index = [0]
    for kind, _, Wi in effects:
        if kind == "lesion":
            w_list.append(Wi)
            w_index += [len(w_list) - 1] * doses.size
        else:
            w_index += [0] * doses.size
    Wset = jnp.asarray(np.stack(w_list))
    widx = jnp.asarray(w_index, jnp.int32)
    n_i, n_k = len(names), doses.size

    def item(a_j, w_j, G_d):
        return vbt.hopf_fc_symmetric(a_j, Wset[w_j], G_d)

    @jax.jit
    def batch(a_b, G_b):
        def draw(a_d, G_d):
            # baseline and every (intervention, dose) go through one batched FC computation,
            # so a zero change gives bit-identical FC (and exactly zero differences)
            A = jnp.concatenate([a_d[None]] + [fn(a_d) for _, fn, _ in effects])
            fcs = jax.vmap(item, in_axes=(0, 0, None))(A, widx, G_d)
            g, m, dist = _summaries(fcs, iu, target, distance)
            bad = ~jnp.all(jnp.isfinite(fcs), axis=(-2, -1))
            nanf = jnp.asarray(jnp.nan, fcs.dtype)
            g = jnp.where(bad[:, None], nanf, g)
            m, dist = jnp.where(bad, nanf, m), jnp.where(bad, nanf, dist)
            ok = ~bad[1:] & ~bad[0]
            dfc = jnp.where(ok[:, None, None], fcs[1:] - fcs[0], 0.0)
            base = (g[0], m[0], dist[0])
            after = (
                g[1:].reshape(n_i, n_k, n),
                m[1:].reshape(n_i, n_k),
                dist[1:].reshape(n_i, n_k),
                bad[1:].reshape(n_i, n_k),
            )
            return base, after, dfc, ok, A, bad

        base, after, dfc, ok, A, bad = jax.vmap(draw)(a_b, G_b)
        return base, after, dfc.sum(0), ok.sum(0), A, bad

    band_power = None if bands is None else _band_power(Wset, widx, omega, bands)
    pieces = []
    fc_sum = np.zeros((n_i * n_k, n, n), np.float64)
    ok_count = np.zeros((n_i * n_k,), np.int64)
    bp_pieces = []
    for s in range(0, D, chunk):
        base, after, dsum, cnt, A, bad_b = jax.device_get(
            batch(jnp.asarray(a[s : s + chunk]), jnp.asarray(G[s : s + chunk]))
        )
        pieces.append((base, after))
        if bands is not None:
            bp = jax.device_get(band_power(A, jnp.asarray(G[s : s + chunk])))
            bp_pieces.append(np.where(bad_b[:, :, None, None], np.nan, bp).astype(np.float32))
        fc_sum += dsum
        ok_count += cnt
        if progress is not None:
            progress(min(s + chunk, D))
    (gb, mb, db), (ga, ma, da, bad) = jax.tree_util.tree_map(
        lambda *x: np.concatenate(x, axis=0), *pieces
    )
    bb = ba = None
    if bands is not None:
        bp_all = np.concatenate(bp_pieces)  # (D, 1 + I K, B, N)
        bb = bp_all[:, 0]
        ba = bp_all[:, 1:].reshape((D, n_i, n_k) + bp_all.shape[2:])
    with np.errstate(invalid="ignore", divide="ignore"):
        fc_mean = fc_sum / ok_count[:, None, None]
    fc_mean = np.where(ok_count[:, None, None] > 0, fc_mean, np.nan).astype(np.float32)
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
        kinds=kinds,
        fc_change_mean=fc_mean.reshape(n_i, n_k, n, n),
        unstable=np.asarray(bad, bool),
        band_names=band_names,
        band_power=None if bands is None else ba,
        band_power_base=None if bands is None else bb,
    )
