"""Draws streamed to disk as the run goes: ``sample(..., store=directory)``.

A long run's draws need not fit in memory: d = 1000 coordinates, 10⁵ draws and 4 chains are
3.2 GB in float64. With ``store=`` the driver writes each chunk's kept draws to
``<directory>/draws.npy`` as soon as they are made (a plain NumPy ``.npy`` file, shape
``(chains, draws, coordinates)``, written in place with ``os.pwrite``: nothing is buffered
in the process, so its resident memory stays at a few chunks), and at the end writes the
rest of the trace (statistics, adaptation, how the run was made) to
``<directory>/trace.nc`` (netCDF-4, the layout of :func:`langevin.save`, less the draws).
The returned trace's ``draws`` is a read-only memory map of the file: the operating system
pages in what an analysis touches. ``langevin.load(directory)`` opens it again.

Readable without this package: ``numpy.load("draws.npy", mmap_mode="r")`` and
``xarray.open_dataset("trace.nc")``.

Why ``.npy`` and not Zarr: it is what NumPy memory-maps directly (every NumPy function works
on the draws with no copy and no extra dependency), its header is written once, and a chunk
is a set of byte ranges written in place, so a run killed mid-way leaves every chunk written
before intact for :func:`langevin.resume`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["DrawStore", "DRAWS_FILE", "TRACE_FILE"]

DRAWS_FILE = "draws.npy"
TRACE_FILE = "trace.nc"


class DrawStore:
    """A ``(chains, draws, coordinates)`` array in a ``.npy`` file, written block by block."""

    def __init__(self, directory: str | os.PathLike, shape: tuple[int, int, int], dtype,
                 *, create: bool = True) -> None:  # fmt: skip
        self.directory = Path(directory)
        self.path = self.directory / DRAWS_FILE
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        if create:
            self.directory.mkdir(parents=True, exist_ok=True)
            _allocate(self.path, self.shape, self.dtype)
        self.offset = _data_offset(self.path, self.shape, self.dtype)

    def write(self, first: int, block: np.ndarray) -> None:
        """Draws ``block`` ``(chains, m, coordinates)`` as draws ``first … first + m − 1``."""
        block = np.ascontiguousarray(block, dtype=self.dtype)
        chains, draws, k = self.shape
        row = k * self.dtype.itemsize
        fd = os.open(self.path, os.O_WRONLY)
        try:
            for c in range(chains):  # each chain's rows are one contiguous byte range
                os.pwrite(fd, block[c].tobytes(), self.offset + (c * draws + first) * row)
        finally:
            os.close(fd)

    def read(self, count: int | None = None) -> np.ndarray:
        """A read-only memory map of the first ``count`` draws of every chain."""
        draws = np.load(self.path, mmap_mode="r")
        return draws if count is None else draws[:, :count]

    def grow(self, draws: int) -> DrawStore:
        """The same store with room for ``draws`` draws per chain (a resumed run that asks
        for more): the kept draws are copied chain by chain into a larger file."""
        chains, old, k = self.shape
        if draws <= old:
            return self
        tmp = self.directory / (DRAWS_FILE + ".grow")
        _allocate(tmp, (chains, draws, k), self.dtype)
        bigger = DrawStore.__new__(DrawStore)
        bigger.directory, bigger.path = self.directory, tmp
        bigger.shape, bigger.dtype = (chains, draws, k), self.dtype
        bigger.offset = _data_offset(tmp, bigger.shape, self.dtype)
        source = self.read()
        for a in range(0, old, 4096):
            bigger.write(a, source[:, a : a + 4096])
        del source
        os.replace(tmp, self.path)
        bigger.path = self.path
        return bigger


def _header(shape, dtype) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf,
        {
            "descr": np.lib.format.dtype_to_descr(dtype),
            "fortran_order": False,
            "shape": tuple(shape),
        },
    )
    return buf.getvalue()


def _allocate(path: Path, shape, dtype) -> None:
    """A ``.npy`` file of ``shape``: the header, then a sparse body (the blocks are allocated
    as they are written; the draws not yet made are never read: a trace shows ``[:, :kept]``,
    and a stopped chain's rows are written, as NaN, like the others)."""
    header = _header(shape, dtype)
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) + int(np.prod(shape)) * dtype.itemsize)


def _data_offset(path: Path, shape, dtype) -> int:
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        header = np.lib.format.read_array_header_1_0(f) if version == (1, 0) else \
            np.lib.format.read_array_header_2_0(f)  # fmt: skip
        if tuple(header[0]) != tuple(shape) or np.dtype(header[2]) != np.dtype(dtype):
            raise ValueError(f"{path}: holds {header[0]} {header[2]}, expected {shape} {dtype}")
        return f.tell()
