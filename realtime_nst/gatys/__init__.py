"""Optimisation-based style transfer (Gatys et al. 2016): no trained network, any style (torch)."""
