"""Helpers for the batch tests: partners with funds, a hub (alice) with a channel to each, signatures."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from eth_account.signers.local import LocalAccount

from channeld import batch
from channeld.batch import BatchEntry, BatchKind, BatchTerms, BlsSecretKey
from tests.contracts.conftest import PERIOD, World
from tests.contracts.hub import account

FAR = 2**40


@cache
def partner(index: int) -> LocalAccount:
    return account(f"batch partner {index}")


@cache
def bls_key(index: int) -> tuple[BlsSecretKey, bytes, bytes]:
    """(secret key, EIP-2537 public key, EIP-2537 proof of possession) of partner `index`, computed once."""
    key = BlsSecretKey.from_seed(f"batch partner {index} BLS seed".encode().ljust(32, b"."))
    public = key.public_key()
    return key, batch.g1_to_eip2537(public), batch.g2_to_eip2537(key.prove_possession())


@dataclass
class Batch:
    world: World
    partners: list[LocalAccount]
    channel_ids: list[bytes]

    @property
    def hub_address(self) -> str:
        return self.world.alice.address

    def entries(self, amounts: list[int]) -> list[BatchEntry]:
        views = [self.world.hub.view(cid) for cid in self.channel_ids]
        return [batch.entry_from_state(cid, view.state, self.hub_address, amount)
                for cid, view, amount in zip(self.channel_ids, views, amounts, strict=True)]

    def withdraw_signatures(self, totals: list[int], receiver: str, expiry: int = FAR) -> list[bytes]:
        return [self.world.hub.sign_withdraw(p, cid, self.hub_address, total, expiry, receiver)
                for p, cid, total in zip(self.partners, self.channel_ids, totals, strict=True)]

    def close_signatures(self, payouts: list[int], receiver: str) -> list[bytes]:
        signatures = []
        for p, cid, payout in zip(self.partners, self.channel_ids, payouts, strict=True):
            state = self.world.hub.view(cid).state
            rest = state.held - payout
            if state.is_first(self.hub_address):
                args = (payout, receiver, rest, p.address)
            else:
                args = (rest, p.address, payout, receiver)
            signatures.append(self.world.hub.sign_cooperative(p, cid, *args))
        return signatures

    def terms(self, kind: BatchKind, receiver: str, expiry: int = FAR) -> BatchTerms:
        world = self.world
        return BatchTerms(world.chain.chain_id, world.hub.address, kind, world.token.address,
                          self.hub_address, receiver, expiry)

    def register_bls(self, indexes: list[int]) -> None:
        """Each partner registers its key with its proof; the hub registers the signer list."""
        for p, index in zip(self.partners, indexes, strict=True):
            _, public, proof = bls_key(index)
            self.world.hub.transact(p.address, batch.encode_register_bls_key(public, proof))
        keys = [bls_key(index)[1] for index in indexes]
        data = batch.encode_register_bls_signers([p.address for p in self.partners], keys)
        self.world.hub.transact(self.hub_address, data)

    def bls_sign(
        self, indexes: list[int], terms: BatchTerms, entries: list[BatchEntry]
    ) -> tuple[bytes, bytes]:
        """Every partner checks its own entry in the tree and signs; returns (aggregate key, signature)."""
        leaves = [batch.leaf(terms.kind, entry) for entry in entries]
        root = batch.merkle_root(leaves)
        message = terms.message(len(entries), root)
        signatures = [
            batch.partner_sign(bls_key(index)[0], leaves[i], batch.merkle_path(leaves, i), root, message)
            for i, index in enumerate(indexes)
        ]
        public_keys = [bls_key(index)[0].public_key() for index in indexes]
        aggregate_key = batch.g1_to_eip2537(batch.aggregate_public_keys(public_keys))
        return aggregate_key, batch.g2_to_eip2537(batch.aggregate_signatures(signatures))


def open_batch(world: World, count: int, deposit: int = 100, first: int = 0) -> Batch:
    """alice opens a channel with each of `count` partners in one openChannels, depositing `deposit` in each;
    each partner deposits 50 of its own."""
    partners = [partner(first + i) for i in range(count)]
    for p in partners:
        world.chain.fund(p.address)
        world.token.mint(p.address, 10**6)
        world.token.approve(p.address, world.hub.address, 2**256 - 1)
    before = len(world.hub.events)
    data = batch.encode_open_channels(world.token.address, PERIOD, 7, [p.address for p in partners],
                                      [deposit] * count)
    world.hub.transact(world.alice.address, data)
    ids = [e.channel_id for e in world.hub.events[before:] if type(e).__name__ == "ChannelOpened"]
    for p, cid in zip(partners, ids, strict=True):
        world.hub.deposit(p.address, cid, p.address, 50)
    return Batch(world, partners, ids)
