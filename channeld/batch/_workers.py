"""Run py-ecc's slow BLS work off the caller's thread: signing, aggregation and verification go to a
pool of worker processes (pure-Python pairing holds the GIL, so threads would not run them in parallel).

Each method returns a concurrent.futures.Future; a trio caller awaits it with
`trio.to_thread.run_sync(future.result)` and keeps its event loop free.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from types import TracebackType

from channeld.batch import _bls


def _sign(scalar: int, message: bytes) -> bytes:
    return _bls.BlsSecretKey(scalar).sign(message)


def _prove(scalar: int) -> bytes:
    return _bls.BlsSecretKey(scalar).prove_possession()


class BlsWorker:
    """A pool of BLS worker processes (or any executor given, e.g. a thread pool in tests).

    Workers are spawned, not forked: the caller is typically a trio program with threads running, and a
    forked child would inherit their locks in whatever state they were."""

    def __init__(self, executor: Executor | None = None, workers: int = 2) -> None:
        if executor is None:
            spawn = multiprocessing.get_context("spawn")
            executor = ProcessPoolExecutor(max_workers=workers, mp_context=spawn)
        self._executor = executor

    def sign(self, key: _bls.BlsSecretKey, message: bytes) -> Future[bytes]:
        return self._executor.submit(_sign, key.scalar, message)

    def prove_possession(self, key: _bls.BlsSecretKey) -> Future[bytes]:
        return self._executor.submit(_prove, key.scalar)

    def verify_signature(self, public_key: bytes, message: bytes, signature: bytes) -> Future[bool]:
        return self._executor.submit(_bls.verify_signature, public_key, message, signature)

    def sign_many(self, keys: Sequence[_bls.BlsSecretKey], message: bytes) -> list[Future[bytes]]:
        return [self.sign(key, message) for key in keys]

    def aggregate(self, signatures: Sequence[bytes]) -> Future[bytes]:
        return self._executor.submit(_bls.aggregate_signatures, list(signatures))

    def verify_aggregate(
        self, public_keys: Sequence[bytes], message: bytes, signature: bytes
    ) -> Future[bool]:
        return self._executor.submit(_bls.verify_aggregate, list(public_keys), message, signature)

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def __enter__(self) -> BlsWorker:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
