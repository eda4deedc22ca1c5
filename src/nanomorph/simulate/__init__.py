"""Synthetic TEM / HAADF-STEM micrographs of metal nanoparticles with exact ground truth.

`simulate_micrograph` makes one image with its semantic mask, instance labels and particle table;
`write_dataset` writes many to disk (the ``nanomorph simulate`` command).
"""

from nanomorph.simulate.dataset import write_dataset
from nanomorph.simulate.micrograph import (
    PARTICLE_TABLE_COLUMNS,
    SimulatedMicrograph,
    SimulationParameterError,
    check_settings,
    simulate_micrograph,
)
from nanomorph.simulate.negatives import NEGATIVE_KINDS, NEGATIVE_SCENARIO, simulate_negative
from nanomorph.simulate.scenarios import MIXTURE_WEIGHTS, SCENARIOS, UnknownScenarioError
from nanomorph.simulate.shapes import SHAPES

__all__ = [
    "MIXTURE_WEIGHTS",
    "NEGATIVE_KINDS",
    "NEGATIVE_SCENARIO",
    "PARTICLE_TABLE_COLUMNS",
    "SCENARIOS",
    "SHAPES",
    "SimulatedMicrograph",
    "SimulationParameterError",
    "UnknownScenarioError",
    "check_settings",
    "simulate_micrograph",
    "simulate_negative",
    "write_dataset",
]
