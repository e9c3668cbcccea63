"""Interventions on a fitted twin: drugs, stimulation and lesions, one file each.

Each is an immutable pytree (:class:`AbstractIntervention`) whose ``apply`` returns a new model
or connectome; numeric settings (dose, efficacy, amplitude, lesion factor) can be traced by
``jax.jit``, ``jax.vmap`` and ``jax.grad``.
"""

from ._base import AbstractIntervention as AbstractIntervention
from .drug import Drug as Drug
from .drug import antipsychotic_d2 as antipsychotic_d2
from .drug import benzodiazepine_gabaa as benzodiazepine_gabaa
from .drug import ketamine_nmda as ketamine_nmda
from .drug import normalise_density as normalise_density
from .drug import psychedelic_5ht2a as psychedelic_5ht2a
from .lesion import Lesion as Lesion
from .occupancy import Occupancy as Occupancy
from .stimulation import Stimulation as Stimulation

__all__ = [
    "AbstractIntervention",
    "Drug",
    "Lesion",
    "Occupancy",
    "Stimulation",
    "antipsychotic_d2",
    "benzodiazepine_gabaa",
    "ketamine_nmda",
    "normalise_density",
    "psychedelic_5ht2a",
]
