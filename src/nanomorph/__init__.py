"""nanomorph: calibrated particle size and shape distributions from TEM micrographs."""

__version__ = "0.1.0"
