"""Read a kernel's one-step map off its own step code.

Every kernel's ``step_math`` is portable: :func:`langevin.backends.portable.make_twin` binds
it to the plain-NumPy namespace (:mod:`langevin.backends.numpy_ops`), which runs it in the
Python interpreter, one chain at a time. On a Gaussian target ``∇log π(x) = −A(x − m)`` is
affine, and a kernel without a Metropolis–Hastings correction whose noise is Gaussian is
then an affine map of its *free state* ``z`` (the position, and the momentum when the state
has one) and of its standard normal noise ``ξ``:

    z' = M z + c + B ξ.

Its columns are read off the twin: ``c = step(0, 0)``, ``M e_i = step(e_i, 0) − c``,
``B e_j = step(0, e_j) − c``. Uniform draws (the randomized midpoint's ``α``) are held fixed
while reading, so such a kernel gives one affine map *per value of the uniform*
(random coefficients). Random points are then pushed through the twin and compared with
the affine prediction; a kernel that is not affine (an MH correction, a nonlinear target)
raises :class:`NotAffineError`.

**Detection** (:func:`classify`): nothing is declared by hand. The kernel's step is probed on
a generic correlated Gaussian at several values of each uniform draw, including values next
to 0 and 1. A Metropolis–Hastings step at ``u ≈ 1`` accepts only the moves that raise the
density ratio, so on generic points some moves are accepted and some are not, and the
step is visibly piecewise: it is classified ``"nonlinear"`` (Monte Carlo). A step that is
affine at every probed uniform is ``"linear"`` when the maps agree (the uniform does not
matter) and ``"random"`` (random coefficients, exact moments) when they differ.

So the study measures the code that runs, not a re-derivation of its update rule. The
tests compare the maps read here with the textbook recursions.

Two forms:

* :func:`extract_affine`: the full ``(n, n)`` map on any Gaussian (``n = d`` or ``2d``),
  ``d + 2`` to ``2d + q + 2`` twin calls;
* :func:`extract_blocks`: on a *diagonal* Gaussian, where every coordinate of a kernel with
  isotropic parameters moves on its own, the ``nf × nf`` block of every coordinate at once
  (``nf`` free fields), from ``nf + (number of noise fields) + 1`` twin calls on whole
  vectors — the form the large-dimension experiments use. Separability is checked, not
  assumed.

The twin also counts gradient evaluations per step (:func:`gradient_evaluations`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from langevin.backends import numpy_ops
from langevin.backends.portable import make_twin
from langevin.kernels.base import Kernel, Normal, Uniform
from langevin.spec import empty_noise
from langevin.targets.capabilities import form_of

__all__ = [
    "FREE_FIELDS",
    "AffineMap",
    "BlockMaps",
    "Linearity",
    "NotAffineError",
    "NumpyTwin",
    "classify",
    "extract_affine",
    "extract_blocks",
    "gradient_evaluations",
    "uniform_fields",
]

#: The fields of a kernel state that are free (everything else is a function of them).
FREE_FIELDS = ("position", "momentum")


class NotAffineError(RuntimeError):
    """The kernel's step is not an affine map of its state and noise on this target."""


class CountingValueAndGrad:
    """``x ↦ (log π(x), ∇log π(x))`` that counts its calls (the twin's target form)."""

    def __init__(self, value_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]]):
        self.value_and_grad = value_and_grad
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return self.value_and_grad(np.asarray(x, dtype=np.float64))


def _identity(fn):
    return fn


class NumpyTwin:
    """A kernel's ``init_math``/``step_math`` run by NumPy (``xp = numpy_ops``)."""

    def __init__(self, kernel: Kernel):
        cls = type(kernel)
        memo: dict = {}
        self.kernel = kernel
        self.step_size = float(kernel.step_size)
        self.params = kernel.params()
        self._init = make_twin(cls.init_math, numpy_ops, _identity, memo)
        self._step = make_twin(cls.step_math, numpy_ops, _identity, memo)
        self.free_fields = tuple(f for f in FREE_FIELDS if f in cls.State._fields)
        if self.free_fields[:1] != ("position",):
            raise TypeError(f"{cls.__name__}: its State has no 'position' field")

    def state(self, target: tuple, free: list[np.ndarray]):
        """The kernel state at the free values ``free`` (position[, momentum])."""
        x = np.array(free[0], dtype=np.float64)
        # zero init noise: a kinetic momentum starts at 0 here, and is then set from `free`
        init_noise = empty_noise(self.kernel.init_noise(x.shape[0]), ())
        st = self._init(x, init_noise, self.params, target)
        if len(self.free_fields) == 2:
            st = st._replace(momentum=np.array(free[1], dtype=np.float64))
        return st

    def step(self, target: tuple, state, noise):
        return self._step(state, noise, self.step_size, self.params, target)


def uniform_fields(kernel: Kernel, dim: int) -> tuple[str, ...]:
    """Names of the kernel's declared ``Uniform`` noise fields."""
    spec = kernel.noise(dim)
    return tuple(n for n, d in zip(spec._fields, spec) if isinstance(d, Uniform))


def _noise_layout(kernel: Kernel, dim: int):
    """``[(name, shape, kind)]`` of the declared noise, kind ``"normal"`` or ``"uniform"``."""
    spec = kernel.noise(dim)
    out = []
    for name, decl in zip(spec._fields, spec):
        if isinstance(decl, Normal):
            out.append((name, tuple(decl.shape), "normal"))
        elif isinstance(decl, Uniform):
            out.append((name, tuple(decl.shape), "uniform"))
        else:
            raise NotAffineError(
                f"{type(kernel).__name__}: noise field '{name}' is {type(decl).__name__}, "
                "not a normal or a uniform draw, so the step is not affine in its noise"
            )
    return type(spec), out


def _build_noise(noise_cls, layout, normals: dict[str, Any], uniforms: dict[str, Any]):
    values = []
    for name, shape, kind in layout:
        if kind == "normal":
            v = normals[name]
        else:
            if name not in uniforms:
                raise ValueError(
                    f"the kernel draws a uniform '{name}'; pass its value in uniforms= "
                    "(affine maps are read at fixed uniforms)"
                )
            v = uniforms[name]
        values.append(float(v) if shape == () else np.asarray(v, dtype=np.float64))
    return noise_cls(*values)


def gradient_evaluations(kernel: Kernel, dim: int = 2) -> float:
    """Gradient evaluations one step of ``kernel`` makes, counted on its NumPy twin.

    Counted on a standard Gaussian from a generic state (gradients cached in the state are
    not counted again, which is the point).
    """
    twin = NumpyTwin(kernel)
    counter = CountingValueAndGrad(lambda x: (-0.5 * float(x @ x), -x))
    target = form_of(value_and_grad=counter)
    rng = np.random.default_rng(1)
    free = [rng.standard_normal(dim) for _ in twin.free_fields]
    state = twin.state(target, free)
    noise_cls, layout = _noise_layout(kernel, dim)
    normals = {
        n: rng.standard_normal(s) if s else rng.standard_normal()
        for n, s, k in layout
        if k == "normal"
    }
    uniforms = {n: 0.5 for n, s, k in layout if k == "uniform"}
    before = counter.calls
    twin.step(target, state, _build_noise(noise_cls, layout, normals, uniforms))
    return float(counter.calls - before)


@dataclass(frozen=True)
class AffineMap:
    """One step ``z' = M z + c + B ξ`` of the free state ``z`` (position[, momentum]
    stacked) with standard normal ``ξ`` (the kernel's normal noise fields stacked).

    Attributes:
        M: ``(n, n)``; c: ``(n,)``; B: ``(n, q)``; dim: the position's length d.
        fields: the free fields in ``z``, in order; noise_fields: the normal fields in ``ξ``.
        residual: the largest relative error of the affine prediction at the check points.
    """

    M: np.ndarray
    c: np.ndarray
    B: np.ndarray
    dim: int
    fields: tuple[str, ...]
    noise_fields: tuple[str, ...]
    residual: float

    @property
    def noise_cov(self) -> np.ndarray:
        """``Q = B Bᵀ``, the covariance of the step's noise."""
        return self.B @ self.B.T


#: (state scale, noise scale) of the random points an extracted map is checked at. Eight
#: generic points: a piecewise map (an accept/reject step) agrees with one affine piece at
#: all of them only by a coincidence of probability about 2⁻⁸ per probed uniform.
_CHECK_SCALES = ((0.1, 1.0), (1.0, 1.0), (1.0, 3.0), (3.0, 1.0), (3.0, 3.0), (10.0, 1.0),
                 (10.0, 0.3), (30.0, 3.0))  # fmt: skip


def _check_affine(apply, predict, inputs, scale, rtol, what):
    worst = 0.0
    for z, xi in inputs:
        got, want = apply(z, xi), predict(z, xi)
        err = float(np.max(np.abs(got - want)))
        worst = max(worst, err / scale)
        if not np.all(np.isfinite(got)) or err > rtol * scale:
            raise NotAffineError(
                f"{what}: the step is not affine in (state, noise) on this target: "
                f"max |step − affine prediction| = {err:.3g} (scale {scale:.3g})"
            )
    return worst


def extract_affine(
    kernel: Kernel,
    value_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    dim: int,
    uniforms: dict[str, float] | None = None,
    *,
    rtol: float = 1e-9,
    seed: int = 0,
) -> AffineMap:
    """The affine one-step map of ``kernel`` on the Gaussian with ``value_and_grad``.

    Args:
        kernel: any kernel whose ``step_math`` is portable.
        value_and_grad: NumPy ``x ↦ (log π(x), ∇log π(x))`` with affine gradient.
        dim: dimension d.
        uniforms: values of the kernel's uniform noise fields, held fixed.
        rtol: tolerance of the affinity check, relative to the largest entry of the map.
        seed: seed of the two random check points.

    Raises:
        NotAffineError: the step is not affine (e.g. an MH-corrected kernel).
    """
    twin = NumpyTwin(kernel)
    target = form_of(value_and_grad=CountingValueAndGrad(value_and_grad))
    noise_cls, layout = _noise_layout(kernel, dim)
    uniforms = dict(uniforms or {})
    normal_fields = [(n, s) for n, s, k in layout if k == "normal"]
    sizes = [int(math.prod(s)) if s else 1 for _, s in normal_fields]
    q = sum(sizes)
    nf = len(twin.free_fields)
    n = nf * dim

    def apply(z, xi):
        free = [z[i * dim : (i + 1) * dim] for i in range(nf)]
        normals, off = {}, 0
        for (name, shape), size in zip(normal_fields, sizes):
            chunk = xi[off : off + size]
            normals[name] = chunk.reshape(shape) if shape else chunk[0]
            off += size
        new, _ = twin.step(
            target, twin.state(target, free), _build_noise(noise_cls, layout, normals, uniforms)
        )
        return np.concatenate([np.atleast_1d(getattr(new, f)) for f in twin.free_fields])

    zero_z, zero_xi = np.zeros(n), np.zeros(q)
    c = apply(zero_z, zero_xi)
    eye_n, eye_q = np.eye(n), np.eye(q)
    M = np.stack([apply(eye_n[i], zero_xi) - c for i in range(n)], axis=1)
    B = np.stack([apply(zero_z, eye_q[j]) - c for j in range(q)], axis=1) if q else np.zeros((n, 0))
    scale = max(float(np.max(np.abs(M))), float(np.max(np.abs(B), initial=0.0)), 1.0)
    rng = np.random.default_rng(seed)
    inputs = [(s * rng.standard_normal(n), t * rng.standard_normal(q)) for s, t in _CHECK_SCALES]
    residual = _check_affine(
        apply, lambda z, xi: M @ z + B @ xi + c, inputs, scale, rtol, type(kernel).__name__
    )
    return AffineMap(M, c, B, dim, twin.free_fields, tuple(n for n, _ in normal_fields), residual)


@dataclass(frozen=True)
class BlockMaps:
    """Per-coordinate maps on a diagonal Gaussian: ``z_i' = M[i] z_i + c[i] + B[i] ξ_i``.

    ``z_i`` stacks coordinate ``i`` of each free field, ``ξ_i`` coordinate ``i`` of each
    normal noise field. Shapes: ``M (d, nf, nf)``, ``c (d, nf)``, ``B (d, nf, nn)``.
    """

    M: np.ndarray
    c: np.ndarray
    B: np.ndarray
    fields: tuple[str, ...]
    noise_fields: tuple[str, ...]
    residual: float


def diagonal_value_and_grad(precisions: np.ndarray):
    """NumPy value-and-gradient of the centred diagonal Gaussian with these precisions."""
    lam = np.asarray(precisions, dtype=np.float64).copy()

    def value_and_grad(x):
        g = -lam * x
        return 0.5 * float(x @ g), g

    return value_and_grad


def extract_blocks(
    kernel: Kernel,
    precisions: np.ndarray,
    uniforms: dict[str, float] | None = None,
    *,
    rtol: float = 1e-9,
    seed: int = 0,
) -> BlockMaps:
    """Per-coordinate affine maps of ``kernel`` on ``N(0, diag(1/precisions))``.

    Each free field set to all-ones (the others zero, no noise) gives one column of every
    coordinate's block at once; likewise each normal noise field. Two random points check
    that the coordinates really move independently and affinely.

    Raises:
        NotAffineError: not affine, or coordinates coupled (e.g. a scalar normal noise).
    """
    lam = np.asarray(precisions, dtype=np.float64)
    d = lam.shape[0]
    twin = NumpyTwin(kernel)
    target = form_of(value_and_grad=CountingValueAndGrad(diagonal_value_and_grad(lam)))
    noise_cls, layout = _noise_layout(kernel, d)
    uniforms = dict(uniforms or {})
    normal_fields = [n for n, s, k in layout if k == "normal"]
    for n, s, k in layout:
        if k == "normal" and s != (d,):
            raise NotAffineError(
                f"{type(kernel).__name__}: noise field '{n}' has shape {s}, not one draw per "
                "coordinate, so the coordinates do not move independently"
            )
    nf, nn = len(twin.free_fields), len(normal_fields)

    def apply(z, xi):  # z: (nf, d), xi: (nn, d) -> (nf, d)
        normals = dict(zip(normal_fields, xi))
        new, _ = twin.step(
            target, twin.state(target, list(z)), _build_noise(noise_cls, layout, normals, uniforms)
        )
        return np.stack([np.atleast_1d(getattr(new, f)) for f in twin.free_fields])

    zero_z, zero_xi = np.zeros((nf, d)), np.zeros((nn, d))
    c = apply(zero_z, zero_xi)  # (nf, d)
    M = np.empty((d, nf, nf))
    for b in range(nf):
        z = zero_z.copy()
        z[b] = 1.0
        M[:, :, b] = (apply(z, zero_xi) - c).T
    B = np.empty((d, nf, nn))
    for j in range(nn):
        xi = zero_xi.copy()
        xi[j] = 1.0
        B[:, :, j] = (apply(zero_z, xi) - c).T

    def predict(z, xi):
        return np.einsum("iab,bi->ai", M, z) + np.einsum("iaj,ji->ai", B, xi) + c

    scale = max(float(np.max(np.abs(M))), float(np.max(np.abs(B), initial=0.0)), 1.0)
    rng = np.random.default_rng(seed)
    inputs = [
        (s * rng.standard_normal((nf, d)), t * rng.standard_normal((nn, d)))
        for s, t in _CHECK_SCALES
    ]
    residual = _check_affine(apply, predict, inputs, scale, rtol, type(kernel).__name__)
    return BlockMaps(M, c.T.copy(), B, twin.free_fields, tuple(normal_fields), residual)


@dataclass(frozen=True)
class Linearity:
    """What probing a kernel's step on a Gaussian found (see :func:`classify`).

    Attributes:
        kind: ``"linear"`` (affine with fixed coefficients: exact Gaussian laws),
            ``"random"`` (affine at every value of one uniform draw, with coefficients that
            depend on it: exact moments), or ``"nonlinear"`` (Monte Carlo only).
        reason: one line saying why.
        uniforms: the kernel's uniform noise fields.
    """

    kind: str
    reason: str
    uniforms: tuple[str, ...] = ()

    @property
    def exact_laws(self) -> bool:
        return self.kind in ("linear", "random")


#: Values of each uniform draw the step is probed at: next to 0 and 1 (where an
#: accept/reject step accepts nearly everything, resp. only density-raising moves) and
#: generic interior values.
PROBE_UNIFORMS = (1e-9, 0.137, 0.5, 0.861, 1.0 - 1e-6)


def _probe_problem(dim: int, seed: int):
    rng = np.random.default_rng([seed, 7919])
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    precision = (q * np.geomspace(1.0, 0.2, dim)) @ q.T
    precision = 0.5 * (precision + precision.T)
    mean = rng.standard_normal(dim)

    def value_and_grad(x):
        r = x - mean
        g = -(precision @ r)
        return 0.5 * float(r @ g), g

    return value_and_grad


def classify(kernel: Kernel, dim: int = 3, *, seed: int = 0) -> Linearity:
    """Detect whether ``kernel``'s step is affine on a Gaussian target, by probing it.

    The step is run by the kernel's NumPy twin on a generic correlated Gaussian in ``dim``
    dimensions: the affine map ``z' = M z + c + B ξ`` is read off at every value of
    :data:`PROBE_UNIFORMS` for the kernel's uniform draw (all uniform fields at once), and
    checked at eight random points of several scales each (:func:`extract_affine`). Nothing
    the kernel declares is taken on trust (not even ``exact``): an accept/reject step fails
    the check at ``u`` near 1, a step whose coefficients depend on the uniform (the
    randomized midpoint) passes at every ``u`` with different maps.

    Args:
        kernel: any kernel following the contract of :mod:`langevin.kernels.base`.
        dim: dimension of the probe Gaussian.
        seed: seed of the probe Gaussian and the check points.

    Returns:
        A :class:`Linearity`.
    """
    vg = _probe_problem(dim, seed)
    extra = sorted(set(getattr(kernel, "requires", ())) - {"value_and_grad", "logdensity", "grad"})
    if extra:
        return Linearity(
            "nonlinear", f"needs target capabilities {extra} beyond the gradient (Monte Carlo)"
        )
    try:
        names = uniform_fields(kernel, dim)
    except NotAffineError as exc:
        return Linearity("nonlinear", str(exc))
    values = PROBE_UNIFORMS if names else (None,)
    maps = []
    for u in values:
        uniforms = dict.fromkeys(names, u) if names else None
        try:
            with np.errstate(all="ignore"):  # far probe points may overflow a nonlinear step
                maps.append(extract_affine(kernel, vg, dim, uniforms, seed=seed))
        except NotAffineError as exc:
            where = f" at uniform {u:g}" if names else ""
            return Linearity("nonlinear", f"not affine{where}: {exc}", names)
        except Exception as exc:  # any failure of the probe means: no exact law
            return Linearity("nonlinear", f"the probe failed: {exc!r}", names)
    first = maps[0]
    scale = max(float(np.max(np.abs(first.M))), float(np.max(np.abs(first.B), initial=0.0)), 1.0)
    same = all(
        np.allclose(a.M, first.M, atol=1e-9 * scale)
        and np.allclose(a.c, first.c, atol=1e-9 * scale)
        and np.allclose(a.noise_cov, first.noise_cov, atol=1e-9 * scale**2)
        for a in maps[1:]
    )
    if same:
        why = "affine in (state, noise)" + (", whatever its uniform draw" if names else "")
        return Linearity("linear", why, names)
    if len(names) > 1:
        return Linearity(
            "nonlinear",
            f"affine at fixed uniforms, but it draws {len(names)} uniforms: exact moments "
            "handle one random coefficient",
            names,
        )
    return Linearity("random", f"affine with coefficients that depend on '{names[0]}'", names)
