"""Drugs: a receptor-density-weighted, occupancy-scaled change of a model parameter.

A drug acting on a receptor changes a parameter of every region in proportion to how much of
that receptor the region has and how many receptors the dose occupies:

.. math::
    \\Delta_i = e \\cdot \\mathrm{occ}(d) \\cdot \\rho_i, \\qquad
    p_i' = p_i + \\Delta_i \\;(\\text{mode "add"}) \\quad\\text{or}\\quad
    p_i' = p_i\\,(1 + \\Delta_i) \\;(\\text{mode "scale"})

with ``e`` the efficacy (the change at full occupancy in the densest region: absolute in
``"add"`` mode, relative in ``"scale"`` mode), ``occ`` an :class:`Occupancy` dose-response and
``rho_i`` the regional receptor density rescaled to [0, 1]. This is the receptor-map
neuromodulation of Deco et al. (2018) with an explicit dose axis.

Which parameter a receptor acts on, and how strongly, is a modelling assumption for every
built-in drug: the factories below state it, the paper it follows, and the default efficacy,
which is a placeholder to be fitted to data (e.g. drug-session FC) for a given twin.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import Array

from .._errors import ArgumentError, ShapeError
from .._labels import label_tuple as labels_of
from ._base import AbstractIntervention, is_tracer
from .occupancy import Occupancy

_MODES = ("add", "scale")
_TRANSFORMS = ("minmax", "max", None)


def normalise_density(values: Any, transform: str | None = "minmax") -> Array:
    """Rescale a regional map to the weights a drug uses; missing regions (NaN) get 0.

    Args:
        values: (N,) map, NaN where a region has no value (e.g. the cerebellum in the PET maps).
        transform: ``"minmax"``: ``(v - min) / (max - min)`` over the regions with values, so
            the densest region is 1 and the sparsest 0 (default; works for maps in z-score
            units with negative values); ``"max"``: ``v / max`` (Deco et al. 2018 normalised
            by the maximum; the sparsest region keeps a non-zero weight); ``None``: the values
            as given.

    Returns:
        (N,) array (JAX), 0 where ``values`` is NaN.

    Raises:
        ArgumentError: unknown transform, a map that is not 1-D, all values missing, or (for a
            concrete map) a constant map under ``"minmax"`` or a non-positive maximum under
            ``"max"``.
    """
    if transform not in _TRANSFORMS:
        raise ArgumentError(f"map_transform must be one of {_TRANSFORMS}, got {transform!r}")
    if not is_tracer(values):
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 1:
            raise ShapeError(f"receptor map must be (N,), got shape {v.shape}")
        ok = v[~np.isnan(v)]
        if ok.size == 0:
            raise ArgumentError("receptor map: every value is missing (NaN)")
        if transform == "minmax" and ok.max() == ok.min():
            raise ArgumentError(f"receptor map is constant ({ok.max():g}); cannot min-max scale it")
        if transform == "max" and not ok.max() > 0:
            raise ArgumentError(f"receptor map maximum is {ok.max():g}; 'max' needs it > 0")
    v = jnp.asarray(values)
    missing = jnp.isnan(v)
    if transform == "minmax":
        lo, hi = jnp.nanmin(v), jnp.nanmax(v)
        v = (v - lo) / (hi - lo)
    elif transform == "max":
        v = v / jnp.nanmax(v)
    return jnp.where(missing, 0.0, v)


class Drug(AbstractIntervention):
    """A drug: receptor map x occupancy x efficacy, applied to one or more model parameters.

    Attributes:
        name: drug name (static), e.g. ``"LSD"``.
        receptor: receptor name for :func:`vbt_jax.receptor_map` (e.g. ``"5HT2a"``, static), or
            ``"custom"`` when a map was given as an array.
        receptor_values: the (N,) custom map (NaN where missing) or None.
        parameter: names of the model fields changed (static); each gets the same change.
        efficacy: signed change at full occupancy in the densest region (leaf; absolute in
            ``"add"`` mode, in the parameter's unit; relative in ``"scale"`` mode).
        occupancy: the :class:`Occupancy` dose-response.
        mode: ``"add"`` or ``"scale"`` (static).
        map_transform: how the map becomes weights, see :func:`normalise_density` (static).
        mechanism, reference: documentation (static).
    """

    kind = "drug"

    name: str = eqx.field(static=True)
    receptor: str = eqx.field(static=True)
    receptor_values: Any
    parameter: tuple[str, ...] = eqx.field(static=True)
    efficacy: float | Array
    occupancy: Occupancy
    mode: str = eqx.field(static=True)
    map_transform: str | None = eqx.field(static=True)
    mechanism: str = eqx.field(static=True)
    reference: str = eqx.field(static=True)

    def __init__(
        self,
        name: str,
        receptor: str | Any,
        parameter: str | tuple[str, ...],
        efficacy: float | Array,
        occupancy: Occupancy,
        *,
        mode: str = "add",
        map_transform: str | None = "minmax",
        mechanism: str = "",
        reference: str = "",
    ):
        """Args:
            name: drug name.
            receptor: a receptor name known to :func:`vbt_jax.receptor_map` (looked up on the
                connectome's labels at :meth:`apply` time), or an (N,) map in connectome order
                (NaN where missing).
            parameter: a model field name, or several that all get the same change (e.g.
                ``("a_e", "b_e")`` to scale the whole argument of a transfer function).
            efficacy: see the class attributes.
            occupancy: the dose-response.
            mode: ``"add"`` (``p + e occ rho``) or ``"scale"`` (``p (1 + e occ rho)``).
            map_transform: ``"minmax"`` (default), ``"max"`` or None, see
                :func:`normalise_density`.
            mechanism, reference: free text shown by :meth:`describe`.

        Raises:
            ArgumentError: unknown mode or transform, an empty parameter list, an occupancy that
                is not an :class:`Occupancy`, or a custom map that is not (N,).
        """
        if mode not in _MODES:
            raise ArgumentError(f"Drug {name!r}: mode must be one of {_MODES}, got {mode!r}")
        if map_transform not in _TRANSFORMS:
            raise ArgumentError(
                f"Drug {name!r}: map_transform must be one of {_TRANSFORMS}, got {map_transform!r}"
            )
        params = (parameter,) if isinstance(parameter, str) else tuple(parameter)
        if not params or not all(isinstance(p, str) for p in params):
            raise ArgumentError(f"Drug {name!r}: parameter must be a field name or a tuple of them")
        if not isinstance(occupancy, Occupancy):
            raise ArgumentError(
                f"Drug {name!r}: occupancy must be an Occupancy, got {type(occupancy).__name__}"
            )
        if isinstance(receptor, str):
            self.receptor, self.receptor_values = receptor, None
        else:
            vals = receptor if is_tracer(receptor) else np.asarray(receptor, dtype=np.float64)
            if vals.ndim != 1:
                raise ShapeError(f"Drug {name!r}: receptor map must be (N,), got {vals.shape}")
            self.receptor, self.receptor_values = "custom", vals
        self.name = str(name)
        self.parameter = params
        self.efficacy = efficacy
        self.occupancy = occupancy
        self.mode = mode
        self.map_transform = map_transform
        self.mechanism = str(mechanism)
        self.reference = str(reference)

    def regional_density(self, labels: Any = None) -> Array:
        """The (N,) weights ``rho`` in connectome order (0 where the map has no value).

        Args:
            labels: region names or a connectome; needed when ``receptor`` is a name.

        Raises:
            ArgumentError: a receptor name without labels, labels matching no DK region, or a
                custom map whose length differs from the labels'.
        """
        labels = labels_of(labels)
        if self.receptor_values is None:
            if labels is None:
                raise ArgumentError(
                    f"Drug {self.name!r}: pass labels= (or a connectome) to place the "
                    f"{self.receptor} map on the model's regions"
                )
            from ..readers import receptor_map

            # a drug acts nowhere the PET data do not cover (0 after normalise_density)
            values = receptor_map(self.receptor, labels, allow_missing=True).values
        else:
            values = self.receptor_values
            if labels is not None and values.shape[0] != len(labels):
                raise ShapeError(
                    f"Drug {self.name!r}: custom map has {values.shape[0]} values for "
                    f"{len(labels)} regions"
                )
        return normalise_density(values, self.map_transform)

    def change(self, dose: float | Array, density: Array) -> Array:
        """``efficacy * occupancy(dose) * density``: (N,) change (absolute or relative)."""
        return self.efficacy * self.occupancy(dose) * jnp.asarray(density)

    def apply(
        self, model: Any, dose: float | Array, *, labels: Any = None, density: Any = None
    ) -> Any:
        """The model under this drug at ``dose``: a new model, the input is left unchanged.

        Pure and traceable in ``dose``, ``efficacy`` and the occupancy constants (``jit``,
        ``vmap`` over doses, ``grad``). Changed parameters become (N,) arrays.

        Args:
            model: a neural mass model with the fields in ``parameter`` (scalar or (N,)).
            dose: scalar dose, in the unit of ``occupancy.ec50``.
            labels: region names or the connectome (to place a named receptor map).
            density: (N,) weights to use instead of the map (already scaled; e.g. from
                :meth:`regional_density`, precomputed once outside a loop).

        Returns:
            The model with ``p_i + Delta_i`` (``"add"``) or ``p_i (1 + Delta_i)``
            (``"scale"``), ``Delta_i = efficacy * occ(dose) * rho_i``.

        Raises:
            ArgumentError: a parameter the model lacks (names its fields), a non-scalar dose, a
                parameter or density whose length differs, or as :meth:`regional_density`.
        """
        names = [f.name for f in dataclasses.fields(model)]
        for p in self.parameter:
            if p not in names:
                raise ArgumentError(
                    f"Drug {self.name!r}: {type(model).__name__} has no parameter {p!r}; "
                    f"its parameters are {names}"
                )
        if jnp.ndim(dose) != 0:
            raise ShapeError(
                f"Drug {self.name!r}: dose must be a scalar, got shape {jnp.shape(dose)} "
                "(use jax.vmap for several doses)"
            )
        rho = self.regional_density(labels) if density is None else jnp.asarray(density)
        n = rho.shape[0]
        delta = self.change(dose, rho)
        new = []
        for p in self.parameter:
            old = jnp.asarray(getattr(model, p))
            if old.ndim != 0 and old.shape != (n,):
                raise ShapeError(
                    f"Drug {self.name!r}: {type(model).__name__}.{p} has shape {old.shape}, "
                    f"the receptor map has {n} regions"
                )
            new.append(old + delta if self.mode == "add" else old * (1.0 + delta))
        return eqx.tree_at(
            lambda m: tuple(getattr(m, p) for p in self.parameter), model, tuple(new)
        )

    def describe(self) -> str:
        op = "+ e*occ*rho" if self.mode == "add" else "* (1 + e*occ*rho)"
        eff = "traced" if is_tracer(self.efficacy) else f"{float(np.asarray(self.efficacy)):g}"
        text = (
            f"Drug {self.name!r} on {self.receptor} receptors: {', '.join(self.parameter)} "
            f"{op} with efficacy e = {eff}, occupancy Hill(ec50={self.occupancy.ec50}, "
            f"hill={self.occupancy.hill}, emax={self.occupancy.emax}), density rho = "
            f"{self.map_transform or 'raw'}-scaled map (0 where missing)."
        )
        if self.mechanism:
            text += f" Mechanism: {self.mechanism}"
        if self.reference:
            text += f" Reference: {self.reference}"
        return text


# ------------------------------------------------------------------ built-in drugs


def _model_class(fname: str, model: Any) -> tuple[type, str]:
    """The model class of a preset's ``model`` argument (a registered name, a model class or
    a model), and how to name it in a message."""
    from ..models import MODELS, AbstractModel

    if isinstance(model, str):
        if model not in MODELS:
            raise ArgumentError(
                f"{fname}: model_name {model!r} is not a registered model; expected one of "
                f"{tuple(MODELS)}, a model class or a model"
            )
        return MODELS[model], f"model_name {model!r} ({MODELS[model].__name__})"
    cls = model if isinstance(model, type) else type(model)
    if not issubclass(cls, AbstractModel):
        raise ArgumentError(
            f"{fname}: model must be a registered model name, a model class or a model "
            f"(vbt_jax.models.AbstractModel), got {model!r}"
        )
    return cls, cls.__name__


def _preset(
    fname: str,
    name: str,
    receptor: str,
    *,
    mechanism: str,
    strengthens: bool,
    summary: str,
    model: Any,
    efficacy: float | Array | None,
    occupancy: Occupancy | None,
    map_transform: str | None,
    reference: str,
) -> Drug:
    """A drug acting through the ``mechanism`` the model class declares: ``"scale"`` mode on
    the mechanism's parameters, default efficacy ``+-Mechanism.efficacy`` (``+`` when the drug
    ``strengthens`` the mechanism)."""
    from ..models import MODELS

    cls, what = _model_class(fname, model)
    declared = cls.mechanisms.get(mechanism)
    if declared is None:
        able = [k for k, c in MODELS.items() if mechanism in c.mechanisms]
        raise ArgumentError(
            f"{fname}: {what} declares no {mechanism!r} mechanism (its mechanisms: "
            f"{sorted(cls.mechanisms) or 'none'}), so the drug has nothing to act on; "
            f"registered models that declare it: {able}"
        )
    default = declared.efficacy if strengthens else -declared.efficacy
    return Drug(
        name,
        receptor,
        declared.parameters,
        default if efficacy is None else efficacy,
        Occupancy(ec50=1.0) if occupancy is None else occupancy,
        mode="scale",
        map_transform=map_transform,
        mechanism=f"{summary} {declared.note}".strip(),
        reference=reference,
    )


def psychedelic_5ht2a(
    model: Any = "wong_wang",
    *,
    efficacy: float | Array | None = None,
    occupancy: Occupancy | None = None,
    map_transform: str | None = "minmax",
    name: str = "psychedelic (5-HT2A agonist)",
) -> Drug:
    """A serotonergic psychedelic (LSD, psilocybin): 5-HT2A agonism raising excitatory gain.

    Mechanism (Deco et al. 2018): 5-HT2A receptors sit on excitatory pyramidal neurons; agonism
    increases their neuronal gain, regionally in proportion to the 5-HT2A density (PET map,
    Hansen et al. 2022).

    - ``"wong_wang"`` (:class:`~vbt_jax.models.ReducedWongWangExcInh`): both ``a_e`` and
      ``b_e`` scaled by ``g_i = 1 + e occ rho_i``, i.e. the excitatory transfer function's
      argument ``a_e I_E - b_e`` is multiplied by the gain ``g_i``, as in the paper's
      neuromodulated transfer function. Default ``e = +0.2``.
    - ``"hopf"`` (:class:`~vbt_jax.models.StuartLandau`): ``a`` scaled by ``1 + e occ rho``
      with default ``e = -0.5``: more excitable (towards the bifurcation).

    The drug acts through the ``"excitatory_gain"`` :class:`~vbt_jax.models.Mechanism` the
    model class declares (strengthened: default ``e = +Mechanism.efficacy``).

    Args:
        model: a model class, a model, or the name of a registered one
            (:data:`vbt_jax.models.MODELS`, e.g. ``"wong_wang"`` or ``"hopf"``) declaring the
            mechanism.
        efficacy: relative change at full occupancy in the densest region (default above; a
            placeholder, fit it).
        occupancy: dose-response (default ``Occupancy(ec50=1)``: dose in multiples of EC50).
        map_transform: see :func:`normalise_density`.
        name: drug name.

    Returns:
        A :class:`Drug` in ``"scale"`` mode on the ``"5HT2a"`` map.

    Raises:
        ArgumentError: an unregistered model name, or a model declaring no such mechanism.

    Reference: G. Deco, J. Cruzat, J. Cabral, G. M. Knudsen, R. L. Carhart-Harris, P. C.
    Whybrow, N. K. Logothetis, M. L. Kringelbach (2018) Whole-brain multimodal neuroimaging
    model using serotonin receptor maps explains non-linear functional effects of LSD.
    Curr. Biol. 28(19), 3065-3074.
    """
    mech = "5-HT2A agonism increases the gain of excitatory (pyramidal) populations."
    ref = "Deco et al. (2018) Curr. Biol. 28:3065-3074"
    return _preset(
        "psychedelic_5ht2a",
        name,
        "5HT2a",
        mechanism="excitatory_gain",
        strengthens=True,
        summary=mech,
        model=model,
        efficacy=efficacy,
        occupancy=occupancy,
        map_transform=map_transform,
        reference=ref,
    )


def antipsychotic_d2(
    model: Any = "wong_wang",
    *,
    efficacy: float | Array | None = None,
    occupancy: Occupancy | None = None,
    map_transform: str | None = "minmax",
    name: str = "antipsychotic (D2 antagonist)",
) -> Drug:
    """An antipsychotic: D2 antagonism lowering dopaminergic gain where D2 is dense (striatum).

    Occupancy is the clinically measured quantity: antipsychotic response needs about 65 % D2
    occupancy and extrapyramidal side effects rise above about 80 % (Kapur & Seeman 2001); with
    the default ``Occupancy(ec50=1)`` (dose in multiples of EC50, Hill 1) that window is a dose
    of 1.86-4. Pass an :class:`Occupancy` fitted to a drug's PET occupancy data for real doses.

    The network mechanism is a modelling assumption: blocking D2 receptors is taken to reduce
    the gain of the excitatory populations in proportion to the D2 density (the D2 map,
    FLB457 PET, peaks in putamen and caudate):

    - ``"wong_wang"``: ``a_e`` and ``b_e`` scaled by ``1 + e occ rho`` with default
      ``e = -0.2`` (the gain multiplying ``a_e I_E - b_e`` is lowered).
    - ``"hopf"``: ``a`` scaled with default ``e = +0.5`` (away from the bifurcation).

    It acts through the model's ``"excitatory_gain"`` mechanism, weakened (default
    ``e = -Mechanism.efficacy``).

    Args:
        model, efficacy, occupancy, map_transform, name: as :func:`psychedelic_5ht2a`.

    Returns:
        A :class:`Drug` in ``"scale"`` mode on the ``"D2"`` map.

    Raises:
        ArgumentError: an unregistered model name, or a model declaring no such mechanism.

    Reference: S. Kapur, P. Seeman (2001) Does fast dissociation from the dopamine D2 receptor
    explain the action of atypical antipsychotics? A new hypothesis. Am. J. Psychiatry 158(3),
    360-369; the gain mechanism follows the receptor-map modulation of Deco et al. (2018).
    """
    mech = (
        "D2 antagonism (assumed network effect) lowers excitatory gain in D2-rich regions; "
        "therapeutic D2 occupancy 65-80 %."
    )
    ref = "Kapur & Seeman (2001) Am. J. Psychiatry 158:360-369; Deco et al. (2018) Curr. Biol."
    return _preset(
        "antipsychotic_d2",
        name,
        "D2",
        mechanism="excitatory_gain",
        strengthens=False,
        summary=mech,
        model=model,
        efficacy=efficacy,
        occupancy=occupancy,
        map_transform=map_transform,
        reference=ref,
    )


def ketamine_nmda(
    model: Any = "wong_wang",
    *,
    efficacy: float | Array | None = None,
    occupancy: Occupancy | None = None,
    map_transform: str | None = "minmax",
    name: str = "ketamine (NMDA antagonist)",
) -> Drug:
    """Ketamine: NMDA antagonism that preferentially weakens excitation of interneurons.

    Mechanism: at subanaesthetic doses ketamine blocks NMDA receptors on fast-spiking
    inhibitory interneurons more than on pyramidal cells; the weaker E->I drive lowers
    feedback inhibition onto the excitatory population (disinhibition, a raised E/I ratio), as
    in the cortical circuit models of Murray et al. (2014) and the ketamine E/I modelling of
    Anticevic et al. (2012).

    - ``"wong_wang"``: the E->I NMDA current of
      :class:`~vbt_jax.models.ReducedWongWangExcInh` is ``J_N S_E`` in ``I_I``, but ``J_N``
      also sets the E->E recurrence (``w_+ J_N S_E``) and the long-range input (``J_N C``) of
      the excitatory pool, so scaling ``J_N`` lowers excitation overall (NMDA hypofunction,
      not disinhibition): at the FIC operating point the loss of direct excitatory input
      outweighs the weaker inhibition. The model has no separate E->I weight, so the
      disinhibition is implemented through its consequence, the feedback-inhibition weight
      ``J_i`` (I->E), scaled by ``1 + e occ rho`` with default ``e = -0.2`` on the NMDA map.
      Build ``Drug(..., parameter="J_N")`` for the hypofunction variant.
    - ``"hopf"``: ``a`` scaled with default ``e = -0.5`` (towards the bifurcation: the
      disinhibited region is more excitable).

    It acts through the model's ``"feedback_inhibition"`` mechanism, weakened (default
    ``e = -Mechanism.efficacy``).

    Args:
        model, efficacy, occupancy, map_transform, name: as :func:`psychedelic_5ht2a`.

    Returns:
        A :class:`Drug` in ``"scale"`` mode on the ``"NMDA"`` map.

    Raises:
        ArgumentError: an unregistered model name, or a model declaring no such mechanism.

    Reference: J. D. Murray, A. Anticevic, M. Gancsos, M. Ichinose, P. R. Corlett, J. H.
    Krystal, X.-J. Wang (2014) Linking microcircuit dysfunction to cognitive impairment:
    effects of disinhibition associated with schizophrenia in a cortical working memory model.
    Cereb. Cortex 24(4), 859-872; A. Anticevic et al. (2012) PNAS 109(41), 16720-16725.
    """
    mech = "NMDA antagonism on interneurons weakens E->I drive: disinhibition."
    ref = "Murray et al. (2014) Cereb. Cortex 24:859-872; Anticevic et al. (2012) PNAS"
    return _preset(
        "ketamine_nmda",
        name,
        "NMDA",
        mechanism="feedback_inhibition",
        strengthens=False,
        summary=mech,
        model=model,
        efficacy=efficacy,
        occupancy=occupancy,
        map_transform=map_transform,
        reference=ref,
    )


def benzodiazepine_gabaa(
    model: Any = "wong_wang",
    *,
    efficacy: float | Array | None = None,
    occupancy: Occupancy | None = None,
    map_transform: str | None = "minmax",
    name: str = "benzodiazepine (GABA-A positive modulator)",
) -> Drug:
    """A benzodiazepine: positive allosteric modulation of GABA-A receptors (more inhibition).

    Mechanism: benzodiazepines bind the GABA-A benzodiazepine site (the flumazenil PET map,
    ``"GABAa"``) and increase the inhibitory current per GABA release.

    - ``"wong_wang"``: the inhibitory weight ``J_i`` (I->E) scaled by ``1 + e occ rho`` with
      default ``e = +0.2``.
    - ``"hopf"``: ``a`` scaled with default ``e = +0.5`` (away from the bifurcation: damped
      fluctuations).

    It acts through the model's ``"feedback_inhibition"`` mechanism, strengthened (default
    ``e = +Mechanism.efficacy``).

    Args:
        model, efficacy, occupancy, map_transform, name: as :func:`psychedelic_5ht2a`.

    Returns:
        A :class:`Drug` in ``"scale"`` mode on the ``"GABAa"`` map.

    Raises:
        ArgumentError: an unregistered model name, or a model declaring no such mechanism.

    Reference: U. Rudolph, H. Möhler (2004) Analysis of GABA-A receptor function and
    dissection of the pharmacology of benzodiazepines and general anesthetics through mouse
    genetics. Annu. Rev. Pharmacol. Toxicol. 44, 475-498; map: Nørgaard et al. (2021) via
    Hansen et al. (2022).
    """
    mech = "GABA-A positive modulation strengthens inhibition."
    ref = "Rudolph & Möhler (2004) Annu. Rev. Pharmacol. Toxicol. 44:475-498"
    return _preset(
        "benzodiazepine_gabaa",
        name,
        "GABAa",
        mechanism="feedback_inhibition",
        strengthens=True,
        summary=mech,
        model=model,
        efficacy=efficacy,
        occupancy=occupancy,
        map_transform=map_transform,
        reference=ref,
    )
