"""`channeld demo`: two channels' whole on-chain lives on the embedded EVM, one line per step.

Alice and Bob open a channel, both deposit, pay each other off-chain (signed balance proofs only),
Bob withdraws while the channel stays open, Alice closes with Bob's proof, Bob answers with Alice's newer
proof, the challenge period passes (the embedded chain's clock is moved) and the channel settles. A second
channel closes cooperatively. Every contract event is read back through the event follower, so the
channel states printed are what a node would see. Needs only pip packages; runs in seconds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from decimal import Decimal

from eth_account import Account
from eth_account.signers.local import LocalAccount

from channeld.chain import contract as hub
from channeld.chain.artifact import load_artifact
from channeld.chain.backend import ChainBackend, embedded_fork_name, start_embedded
from channeld.chain.deploy import deploy
from channeld.chain.errors import TransactionReverted
from channeld.chain.follower import EventFollower, FollowerUpdate, MemoryCursorStore
from channeld.chain.records import Receipt
from channeld.chain.sender import TransactionSender, TxRequest
from channeld.errors import LocalFault

ETH = 10**18
CHALLENGE_PERIOD = 3600  # seconds the partner has to answer a close
MIN_CHALLENGE, MAX_CHALLENGE = 60, 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Step:
    what: str
    why: str
    gas: int


def eth(wei: int) -> str:
    text = f"{Decimal(wei) / ETH:f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + " ETH"


class DemoChain:
    """The embedded chain, the deployed hub, one sender per participant and the followed channels."""

    def __init__(self, backend: ChainBackend, alice: LocalAccount, bob: LocalAccount) -> None:
        artifact = load_artifact("ChannelHub")
        self.backend, self.alice, self.bob = backend, alice, bob
        self.senders = {who.address: TransactionSender(backend, who, artifact.abi) for who in (alice, bob)}
        self.deployment = deploy(self.senders[alice.address], artifact, [MIN_CHALLENGE, MAX_CHALLENGE])
        self.address = self.deployment.address
        self.chain_id = backend.chain_id()
        self.channels: dict[bytes, hub.OnChainChannel] = {}
        self.follower = EventFollower(backend, self.address, MemoryCursorStore(), self.deployment.block)
        self.steps: list[Step] = []

    def _apply(self, update: FollowerUpdate) -> None:
        if update.retracted:
            raise LocalFault("the embedded chain never reorganises, yet logs were retracted")
        for log in update.applied:
            event = hub.decode_event({"topics": log.topics, "data": log.data})
            if isinstance(event, hub.PayoutDeferred | hub.PayoutClaimed | hub.SecretRevealed
                          | hub.ChannelUnlocked):
                continue
            self.channels[event.channel_id] = hub.apply_event(self.channels.get(event.channel_id), event)

    def send(self, who: LocalAccount, data: bytes, what: str, why: str, value: int = 0) -> Receipt:
        receipt = self.senders[who.address].transact(TxRequest(to=self.address, data=data, value=value))
        self.follower.catch_up(self._apply)
        self.steps.append(Step(what, why, receipt.gas_used))
        return receipt

    def note(self, what: str, why: str) -> None:
        self.steps.append(Step(what, why, 0))

    def sign(self, who: LocalAccount, document: dict[str, object]) -> bytes:
        return bytes(Account.sign_typed_data(who.key, full_message=document).signature)

    def ordered(self, cid: bytes) -> tuple[LocalAccount, LocalAccount]:
        """(participant1, participant2) of the channel: the contract orders them by address."""
        first = self.channels[cid].state.participant1
        return (self.alice, self.bob) if first == self.alice.address else (self.bob, self.alice)


def open_and_fund(chain: DemoChain, salt: int, alice_deposit: int, bob_deposit: int) -> bytes:
    alice, bob = chain.alice, chain.bob
    chain.send(alice, hub.encode_open_channel(bob.address, hub.ETHER, CHALLENGE_PERIOD, salt, alice_deposit),
               f"Alice opens channel (salt {salt}) with Bob, depositing {eth(alice_deposit)}",
               "one contract holds every channel; the id is never reused", value=alice_deposit)
    # the id hashes the opening block's timestamp, so it is known once the open is mined
    cid = hub.channel_id(alice.address, bob.address, salt, chain.backend.timestamp())
    state = chain.channels[cid].state
    chain.send(bob, hub.encode_set_total_deposit(cid, state, bob.address, bob_deposit),
               f"Bob sets his total deposit to {eth(bob_deposit)}",
               "set-total semantics: a retried deposit never pays twice", value=bob_deposit)
    return cid


def proof(chain: DemoChain, signer: LocalAccount, cid: bytes, nonce: int, transferred: int
          ) -> tuple[hub.StoredProof, bytes]:
    stored = hub.StoredProof(nonce, transferred)
    document = hub.balance_proof_typed_data(chain.chain_id, chain.address, cid, stored)
    return stored, chain.sign(signer, document)


def withdraw_while_open(chain: DemoChain, cid: bytes, amount: int) -> None:
    bob = chain.bob
    expiry = chain.backend.timestamp() + 600
    document = hub.withdraw_typed_data(chain.chain_id, chain.address, cid, bob.address, amount, expiry,
                                       bob.address)
    first, second = chain.ordered(cid)
    signatures = chain.sign(first, document), chain.sign(second, document)
    data = hub.encode_set_total_withdraw(cid, chain.channels[cid].state, bob.address, amount, expiry,
                                         bob.address, *signatures)
    chain.send(bob, data, f"Bob withdraws {eth(amount)} while the channel stays open",
               "both signed it: payment becomes settlement when the payee wants, no close needed")


def dispute_and_settle(chain: DemoChain, cid: bytes) -> None:
    alice, bob = chain.alice, chain.bob
    bob_proof, bob_signature = proof(chain, bob, cid, 1, ETH // 5)
    alice_proof, alice_signature = proof(chain, alice, cid, 2, 3 * ETH // 2)
    chain.note("off-chain: Alice pays Bob 1.5 ETH (proof nonce 2), Bob pays Alice 0.2 ETH (nonce 1)",
               "each payment is one signature; the chain sees none of them")
    state = chain.channels[cid].state
    chain.send(alice, hub.encode_close_channel(cid, state, bob_proof, bob_signature),
               "Alice closes with Bob's latest proof (he owes her 0.2 ETH)",
               f"opens a {CHALLENGE_PERIOD} s challenge period for Bob to answer")
    chain.send(bob, hub.encode_update_balance_proof(cid, state, closing_of(chain, cid), alice_proof,
                                                    alice_signature),
               "Bob submits Alice's proof (she sent him 1.5 ETH)",
               "a closer cannot hide payments she made: the partner (or a watchtower) answers")
    closing = closing_of(chain, cid)
    try:
        chain.send(bob, hub.encode_settle_channel(cid, state, closing), "", "")
    except TransactionReverted as refused:
        shown = ", ".join(str(arg) for arg in refused.error_args)
        chain.note(f"settling now is refused: {refused.error_name}({shown})",
                   "the contract's custom error, decoded from its ABI before any gas was spent")
    chain.backend.advance_time(CHALLENGE_PERIOD + 1)
    chain.note(f"{CHALLENGE_PERIOD} s pass on the embedded chain", "the challenge period is over")
    chain.send(bob, hub.encode_settle_channel(cid, state, closing), "Bob settles the channel",
               "each side is paid its deposit plus what it received minus what it sent")


def closing_of(chain: DemoChain, cid: bytes) -> hub.Closing:
    closing = chain.channels[cid].closing
    if closing is None:
        raise LocalFault(f"channel {cid.hex()} should be closed by now")
    return closing


def cooperative_close(chain: DemoChain, cid: bytes, alice_gets: int, bob_gets: int) -> None:
    first, second = chain.ordered(cid)
    state = chain.channels[cid].state
    amounts = {chain.alice.address: alice_gets, chain.bob.address: bob_gets}
    amount1, amount2 = amounts[first.address], amounts[second.address]
    document = hub.cooperative_settle_typed_data(chain.chain_id, chain.address, cid, state, amount1,
                                                 first.address, amount2, second.address)
    data = hub.encode_cooperative_settle(cid, state, amount1, first.address, amount2, second.address,
                                         chain.sign(first, document), chain.sign(second, document))
    chain.send(chain.alice, data, f"cooperative close of {cid.hex()[:8]}: Alice {eth(alice_gets)}, "
               f"Bob {eth(bob_gets)}", "both signed the final split: paid at once, no challenge period")


def paid_out(chain: DemoChain, cid: bytes) -> tuple[int, int]:
    """(Alice's, Bob's) payouts of a unilaterally settled channel."""
    settled = chain.channels[cid].settled
    if settled is None:
        raise LocalFault(f"channel {cid.hex()} should be settled by now")
    first, _ = chain.ordered(cid)
    if first is chain.alice:
        return settled.amount1, settled.amount2
    return settled.amount2, settled.amount1


def summary(chain: DemoChain, unilateral: bytes, cooperative: tuple[bytes, int, int]) -> list[str]:
    channel = chain.channels[unilateral]
    state = channel.state
    alice_paid, bob_paid = paid_out(chain, unilateral)
    deposited = state.deposit1 + state.deposit2
    withdrawn = state.withdrawn1 + state.withdrawn2
    coop_cid, coop_alice, coop_bob = cooperative
    coop_state = chain.channels[coop_cid].state
    held = chain.backend.balance(chain.address)
    if deposited != withdrawn + alice_paid + bob_paid or coop_state.held != coop_alice + coop_bob or held:
        raise LocalFault("the demo's balances do not add up")
    return [
        f"channel {unilateral.hex()[:8]}: deposited {eth(deposited)} = withdrawn {eth(withdrawn)} "
        f"+ paid out {eth(alice_paid)} (Alice) + {eth(bob_paid)} (Bob)",
        f"channel {coop_cid.hex()[:8]}: deposited {eth(coop_state.held)} = paid out {eth(coop_alice)} "
        f"(Alice) + {eth(coop_bob)} (Bob)",
        f"the contract now holds {eth(held)}",
    ]


def run(json_output: bool = False) -> int:
    backend, keys = start_embedded(accounts=2)
    alice, bob = Account.from_key(keys[0]), Account.from_key(keys[1])
    chain = DemoChain(backend, alice, bob)
    chain.steps.append(Step(f"ChannelHub deployed at {chain.address} on the embedded EVM "
                            f"({embedded_fork_name(backend)})", "no node, no compiler: pip packages only",
                            chain.deployment.gas_used))
    first = open_and_fund(chain, 1, 5 * ETH, 3 * ETH)
    withdraw_while_open(chain, first, ETH)
    dispute_and_settle(chain, first)
    second = open_and_fund(chain, 2, 2 * ETH, ETH)
    chain.note("off-chain: Alice pays Bob 0.5 ETH on the second channel", "again only signatures")
    cooperative_close(chain, second, 3 * ETH // 2, 3 * ETH // 2)
    lines = summary(chain, first, (second, 3 * ETH // 2, 3 * ETH // 2))
    if json_output:
        print(json.dumps({"steps": [asdict(step) for step in chain.steps], "balances": lines}, indent=2))
    else:
        for number, step in enumerate(chain.steps, 1):
            gas = f"gas {step.gas:,}" if step.gas else "no gas"
            print(f"{number:>2}. {step.what}: {step.why} [{gas}]")
        print("\n".join(lines))
    return 0
