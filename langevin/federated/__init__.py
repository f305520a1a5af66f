"""Federated Langevin: a posterior over data split across clients that never pool it.

Clients own shards of a data target's rows (:func:`split`, :class:`Clients`); a round is
``K`` local steps of an ordinary kernel on every client, then a communication step run as a
population step of the engine (averaging for FA-LD, moving chains between clients for
DSGLD and FSGLD). :func:`sample_federated` runs it on Numba or JAX — on JAX also with the
clients on a device mesh or across processes — and returns a :class:`FederatedTrace` of
the server iterate with the communication cost. See docs/federated.md.

Example:
    >>> import langevin
    >>> from langevin.federated import FSGLD, sample_federated, split, partition_sorted
    >>> X, y = langevin.targets.rand_hie_design()                    # doctest: +SKIP
    >>> target = langevin.targets.logistic_regression_data(X, y)     # doctest: +SKIP
    >>> clients = split(target, partition_sorted(X[:, 1], 8))        # doctest: +SKIP
    >>> trace = sample_federated(target, FSGLD(1e-5, local_steps=20, batch_size=50),
    ...                          clients, rounds=1000, seed=0)       # doctest: +SKIP
"""

from langevin.federated.algorithms import DSGLD, FALD, FSGLD, GaussianSurrogates, fit_surrogates
from langevin.federated.clients import Clients, partition_sorted, split
from langevin.federated.driver import FederatedTrace, sample_federated

__all__ = [
    "DSGLD", "FSGLD", "FALD", "GaussianSurrogates", "fit_surrogates", "Clients", "split",
    "partition_sorted", "sample_federated", "FederatedTrace",
]  # fmt: skip
