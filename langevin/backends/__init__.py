"""Backends: how to run. ``numba`` (CPU threads, float64) and ``jax`` (vmap + jit, any device)."""

from langevin.backends.base import BACKENDS, ChunkResult, get_backend

__all__ = ["BACKENDS", "ChunkResult", "get_backend"]
