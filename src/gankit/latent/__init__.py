"""Latent-space tools for every generator with ``sample_latent`` and ``forward(z, labels)``: interpolation (linear
and spherical), traversal of each latent dimension, the 2-D manifold grid, DCGAN-style vector arithmetic on attribute
means, and the truncation trick."""

from .tools import (arithmetic, attribute_codes, interpolation_grid, lerp, manifold_grid, parse_expression, slerp,
                    traversal_grid, truncated_normal, walk_between)

__all__ = ["arithmetic", "attribute_codes", "interpolation_grid", "lerp", "manifold_grid", "parse_expression",
           "slerp", "traversal_grid", "truncated_normal", "walk_between"]
