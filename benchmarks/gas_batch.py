"""Batch gas (part of `make gas`): batch withdraw and batch cooperative close of N channels, ECDSA and BLS
consent, for N = 1, 10, 100 and the largest N whose transaction fits a 30M-gas block.

Every batch runs on fresh channels of one ERC-20 token, opened by one hub account with openChannels; the
hub's receiver and every partner start at a zero token balance, as in the single-channel figures. BLS keys
are registered by writing the key hashes into the hub's storage (registerBlsKey itself is measured once,
and registerBlsSigners for every batch): only their gas is left out of the batch figures, not their
checks. Off-chain, partners share a pool of BLS keys (each partner still has its own registered entry and
the aggregate is the sum over all partners): py-ecc needs 0.2 s per signature, and the gas does not depend
on which keys sign.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import count
from typing import Any

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from py_ecc.bls.g2_primitives import pubkey_to_G1, signature_to_G2
from py_ecc.optimized_bls12_381 import Z1, Z2, add, multiply, normalize

from channeld import batch
from channeld.batch import BatchKind, BlsSecretKey, GasModel, Scheme
from tests.contracts.hub import UINT256_MAX, Chain, Hub, Token, account

SIZES = (1, 10, 100)
BLOCK_GAS = 30_000_000
OPEN_CHUNK = 400  # channels per openChannels transaction while setting up
KEY_POOL = 4
BLS_KEYS_SLOT = 3  # ChannelBase's storage layout: channels, unclaimed, extension, blsKeys, blsSigners
DEPOSIT = 100
_fresh = count()


def _g2_sum(signature: bytes, times: int) -> Any:
    return multiply(signature_to_G2(signature), times)  # type: ignore[arg-type]


class BatchBench:
    def __init__(self, chain: Chain, token: Token, hub: Hub) -> None:
        self.chain, self.token, self.hub = chain, token, hub
        self.sender = account("gas batch hub")
        chain.fund(self.sender.address)
        seeds = [f"gas pool key {i}".encode().ljust(32, b".") for i in range(KEY_POOL)]
        self.keys = [BlsSecretKey.from_seed(seed) for seed in seeds]
        self.public = [key.public_key() for key in self.keys]
        self.public_eip = [batch.g1_to_eip2537(p) for p in self.public]

    # -- set-up (not measured)

    def open(self, partners: list[str]) -> list[bytes]:
        ids: list[bytes] = []
        for start in range(0, len(partners), OPEN_CHUNK):
            chunk = partners[start:start + OPEN_CHUNK]
            self.token.mint(self.sender.address, DEPOSIT * len(chunk))
            self.token.approve(self.sender.address, self.hub.address, UINT256_MAX)
            data = batch.encode_open_channels(self.token.address, 120, next(_fresh) * 10**6, chunk,
                                              [DEPOSIT] * len(chunk))
            before = len(self.hub.events)
            self.hub.transact(self.sender.address, data)
            ids += [e.channel_id for e in self.hub.events[before:] if type(e).__name__ == "ChannelOpened"]
        return ids

    def partners(self, n: int) -> list[LocalAccount]:
        tag = next(_fresh)
        return [account(f"gas batch partner {tag} {i}") for i in range(n)]

    def register_keys(self, partners: list[str]) -> None:
        for i, partner in enumerate(partners):
            slot = keccak(abi_encode(["address", "uint256"], [partner, BLS_KEYS_SLOT]))
            value = keccak(self.public_eip[i % KEY_POOL])
            self.chain.rpc("anvil_setStorageAt", [self.hub.address, "0x" + slot.hex(), "0x" + value.hex()])

    def entries(self, ids: list[bytes], amount: int) -> list[batch.BatchEntry]:
        sender = self.sender.address
        return [batch.entry_from_state(cid, self.hub.view(cid).state, sender, amount) for cid in ids]

    def aggregate(self, n: int, message: bytes) -> tuple[bytes, bytes]:
        """(aggregate key, aggregate signature) of n partners using the key pool round-robin."""
        signatures = [key.sign(message) for key in self.keys]
        key_sum, signature_sum = Z1, Z2
        for i in range(KEY_POOL):
            times = len(range(i, n, KEY_POOL))
            if times:
                key_point = pubkey_to_G1(self.public[i])  # type: ignore[arg-type]
                key_sum = add(key_sum, multiply(key_point, times))
                signature_sum = add(signature_sum, _g2_sum(signatures[i], times))
        kx, ky = normalize(key_sum)
        sx, sy = normalize(signature_sum)
        key = b"".join(int(c).to_bytes(64, "big") for c in (kx, ky))
        signature = b"".join(int(c).to_bytes(64, "big") for c in (*sx.coeffs, *sy.coeffs))
        return key, signature

    # -- measured batches: (gas, calldata bytes)

    def run(self, kind: BatchKind, scheme: Scheme, n: int) -> tuple[int, int, int]:
        """(gas, calldata bytes, registerBlsSigners gas per signer) of one batch of n fresh channels."""
        partners, ids = self.prepare(n)
        data, signers_gas, receiver = self.build(kind, scheme, partners, ids)
        gas, size = self.submit(kind, data, receiver, n)
        return gas, size, signers_gas

    def prepare(self, n: int) -> tuple[list[LocalAccount], list[bytes]]:
        partners = self.partners(n)
        return partners, self.open([p.address for p in partners])

    def build(self, kind: BatchKind, scheme: Scheme, partners: list[LocalAccount], ids: list[bytes]
              ) -> tuple[bytes, int, str]:
        """(calldata, registerBlsSigners gas, receiver) of a batch over these channels."""
        receiver = account(f"gas batch receiver {next(_fresh)}").address
        amount = 30 if kind is BatchKind.WITHDRAW else 60
        entries = self.entries(ids, amount)
        if scheme is Scheme.ECDSA:
            return self._ecdsa(kind, partners, ids, entries, receiver), 0, receiver
        addresses = [p.address for p in partners]
        self.register_keys(addresses)
        keys = [self.public_eip[i % KEY_POOL] for i in range(len(partners))]
        signers = self.hub.transact(self.sender.address, batch.encode_register_bls_signers(addresses, keys))
        return self._bls(kind, entries, receiver), int(signers["gasUsed"]) // len(partners), receiver

    def needed_gas(self, data: bytes) -> int:
        """What the batch needs, estimated without the block's gas limit as a cap."""
        call = {"from": self.sender.address, "to": self.hub.address, "data": "0x" + data.hex(),
                "gas": hex(10 * BLOCK_GAS)}
        return int(self.chain.rpc("eth_estimateGas", [call]), 16)

    def submit(self, kind: BatchKind, data: bytes, receiver: str, n: int) -> tuple[int, int]:
        receipt = self.hub.transact(self.sender.address, data)
        amount = 30 if kind is BatchKind.WITHDRAW else 60
        if self.token.balance(receiver) != amount * n:
            raise RuntimeError(f"batch paid {self.token.balance(receiver)}, expected {amount * n}")
        return int(receipt["gasUsed"]), len(data)

    def _ecdsa(self, kind: BatchKind, partners: list[LocalAccount], ids: list[bytes],
               entries: list[batch.BatchEntry], receiver: str) -> bytes:
        hub, sender = self.hub, self.sender.address
        if kind is BatchKind.WITHDRAW:
            signatures = [hub.sign_withdraw(p, cid, sender, e.amount, UINT256_MAX, receiver)
                          for p, cid, e in zip(partners, ids, entries, strict=True)]
            return batch.encode_batch_withdraw(self.token.address, receiver, UINT256_MAX, entries, signatures)
        signatures = []
        for p, cid, e in zip(partners, ids, entries, strict=True):
            first = hub.view(cid).state.is_first(sender)
            rest = e.held - e.amount
            args = (e.amount, receiver, rest, p.address) if first else (rest, p.address, e.amount, receiver)
            signatures.append(hub.sign_cooperative(p, cid, *args))
        return batch.encode_batch_cooperative_close(self.token.address, receiver, entries, signatures)

    def _bls(self, kind: BatchKind, entries: list[batch.BatchEntry], receiver: str) -> bytes:
        terms = batch.BatchTerms(self.chain.chain_id, self.hub.address, kind, self.token.address,
                                 self.sender.address, receiver, UINT256_MAX)
        root = batch.merkle_root([batch.leaf(kind, e) for e in entries])
        key, signature = self.aggregate(len(entries), terms.message(len(entries), root))
        return batch.encode_batch_bls(terms, entries, key, signature)

    def largest(self, kind: BatchKind, scheme: Scheme, guess: int) -> tuple[int, int, int]:
        """(N, gas, calldata bytes) of the largest batch whose transaction fits a block: channels for the
        fitted guess are opened once, and the batch shrinks to a prefix of them until its estimate fits."""
        partners, ids = self.prepare(guess)
        n = guess
        for _ in range(6):
            data, _, receiver = self.build(kind, scheme, partners[:n], ids[:n])
            needed = self.needed_gas(data)
            if needed <= BLOCK_GAS:
                gas, size = self.submit(kind, data, receiver, n)
                return n, gas, size
            n = n * (BLOCK_GAS - 50_000) // needed
        raise RuntimeError("no batch size near the fitted one fits a block")

    def register_key_gas(self) -> int:
        someone = account("gas batch key owner")
        self.chain.fund(someone.address)
        proof = batch.g2_to_eip2537(self.keys[0].prove_possession())
        receipt = self.hub.transact(someone.address, batch.encode_register_bls_key(self.public_eip[0], proof))
        return int(receipt["gasUsed"])


def _fit(points: dict[int, int]) -> GasModel:
    """fixed + per_channel * N through the two largest measured sizes."""
    (n1, g1), (n2, g2) = sorted(points.items())[-2:]
    per_channel = (g2 - g1) // (n2 - n1)
    return GasModel(g2 - per_channel * n2, per_channel)


def measure_batches(chain: Chain, token: Token, deployer: str, progress: Callable[[str], None] = print
                    ) -> dict[str, Any]:
    hub = Hub.deploy(chain, deployer)
    hub.attach_batch(deployer)
    bench = BatchBench(chain, token, hub)
    per_channel: dict[str, dict[str, dict[str, int]]] = {"withdraw": {}, "close": {}}
    calldata: dict[str, dict[str, dict[str, int]]] = {"withdraw": {}, "close": {}}
    signers: dict[str, int] = {}
    models: dict[tuple[BatchKind, Scheme], GasModel] = {}
    for kind in BatchKind:
        for scheme in Scheme:
            name = kind.name.lower()
            gas_by_n: dict[int, int] = {}
            for n in SIZES:
                gas, size, signers_gas = bench.run(kind, scheme, n)
                gas_by_n[n] = gas
                per_channel[name].setdefault(scheme.value, {})[str(n)] = gas // n
                calldata[name].setdefault(scheme.value, {})[str(n)] = size // n
                if signers_gas:
                    signers[str(n)] = signers_gas
                progress(f"batch {name} {scheme.value} N={n}: {gas:,} gas, {gas // n:,} per channel")
            models[(kind, scheme)] = _fit(gas_by_n)
            largest, gas, size = bench.largest(kind, scheme, models[(kind, scheme)].largest_batch(BLOCK_GAS))
            per_channel[name][scheme.value][str(largest)] = gas // largest
            calldata[name][scheme.value][str(largest)] = size // largest
            progress(f"batch {name} {scheme.value} largest N={largest}: {gas:,} gas")
    break_even = {kind.name.lower(): batch.break_even(kind, models) for kind in BatchKind}
    return {
        "withdraw": per_channel["withdraw"],
        "close": per_channel["close"],
        "calldata_bytes": calldata,
        "break_even_n": break_even,
        "models": {f"{k.name.lower()}.{s.value}": {"fixed": m.fixed, "per_channel": m.per_channel}
                   for (k, s), m in models.items()},
        "register_bls_key": bench.register_key_gas(),
        "register_bls_signers_per_member": signers,
    }
