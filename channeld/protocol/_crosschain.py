"""Payments that cross chains: assets, conversion arithmetic, lock expiries across chains, the converter.

A route from a payer on chain A to a recipient on chain B passes a converter: a node with channels on both
that receives a lock in asset X on A and forwards a lock in asset Y on B under the same secrethash. This
module holds what every role must agree on, all pure:

* `Asset` names what a channel moves: (chain id, contract, token; the zero token is the native coin).
* `ConversionTerms`: a converter's rate (numerator/denominator, Y per X) and fee (charged in Y, on the
  amount it forwards), with integer rounding always in the converter's favour.
* `ChainTiming` and `route_expiries`: lock expiries are unix timestamps of each lock's own chain
  (proto/locks.md); the rule in proto/locks.md#routes-across-chains spaces them so that a mediator that
  learns the secret downstream at the last moment can still register it upstream in time.
* `start_conversion` / `handle_conversion`: the converter's machine, the mediator's rules with the amount
  converted and the expiry moved by the crossing margin, fed ticks per chain (`ChainTick`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import msgpack

from channeld.errors import ChanneldError, LocalFault
from channeld.protocol._events import ActionSendLockedTransfer, ActionTick, EventLockReceived
from channeld.protocol._locks import lock_problem
from channeld.protocol._mediator import MediatorState, handle_mediator
from channeld.protocol._record import CorruptRecord
from channeld.protocol._signing import keccak256
from channeld.protocol._state import MAX_LOCK_LIFETIME, ChannelState, ChannelStatus, balance
from channeld.protocol._transfer import (
    BadRoute,
    ChannelDo,
    FeePolicy,
    LockOutcome,
    TransferEffect,
    decode_route,
    encode_route,
)
from channeld.protocol._transfer_record import (
    TRANSFER_RECORD_VERSION,
    TransferState,
    transfer_from_record,
    transfer_to_record,
)
from channeld.wire import Lock

RATE_LIMIT = 1 << 128
NATIVE = bytes(20)


class CrossChainError(LocalFault):
    """A cross-chain figure out of its stated bounds (our caller's mistake, or our own config's)."""


class ExpiryTooFar(CrossChainError):
    """The route needs a first lock that lives longer than a lock may (`MAX_LOCK_LIFETIME`)."""


# --- assets --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Asset:
    """What a channel moves: `token` (zero address: the native coin) in `contract` on chain `chain_id`."""

    chain_id: int
    contract: bytes
    token: bytes = NATIVE

    def __post_init__(self) -> None:
        if type(self.chain_id) is not int or not 0 < self.chain_id < 1 << 64:
            raise CrossChainError(f"chain id must be a positive uint64, got {self.chain_id!r}")
        for name, value in (("contract", self.contract), ("token", self.token)):
            if type(value) is not bytes or len(value) != 20:
                raise CrossChainError(f"{name} must be a 20-byte address")

    @property
    def marker(self) -> bytes:
        """The 20 bytes that stand in a route for "convert into this asset here" (see `conversion_route`)."""
        return keccak256(b"channeld conversion into" + self.chain_id.to_bytes(32, "big") + self.contract
                         + self.token)[:20]

    def __str__(self) -> str:
        token = "native" if self.token == NATIVE else f"0x{self.token.hex()}"
        return f"{token} on chain {self.chain_id}"


# --- conversion arithmetic -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConversionTerms:
    """`numerator / denominator` units of Y per unit of X, and a fee in Y on the amount forwarded.

    Receiving `x` of X, the converter values it at `floor(x * numerator / denominator)` of Y and forwards
    the largest `y` with `y + fee(y)` within that value. To have `y` forwarded, a payer must send
    `ceil((y + fee(y)) * denominator / numerator)`. Both roundings favour the converter.
    """

    numerator: int
    denominator: int
    fees: FeePolicy

    def __post_init__(self) -> None:
        for name, value in (("numerator", self.numerator), ("denominator", self.denominator)):
            if type(value) is not int or not 0 < value < RATE_LIMIT:
                raise CrossChainError(f"rate {name} must be in [1, 2**128), got {value!r}")

    def value_of(self, amount_in: int) -> int:
        """`amount_in` of X in Y, rounded down."""
        return amount_in * self.numerator // self.denominator

    def amount_out(self, amount_in: int) -> int:
        """What the converter forwards (in Y) for `amount_in` (in X); 0 when the fee is not covered."""
        return self.fees.amount_out(self.value_of(amount_in))

    def amount_in(self, amount_out: int) -> int:
        """The least X for which the converter forwards at least `amount_out` of Y."""
        return -(-self.fees.amount_in(amount_out) * self.denominator // self.numerator)

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator} (fee {self.fees.base} + {self.fees.ppm} ppm)"


# --- chain timing and expiries ---------------------------------------------------------------------------

# the bounds within which the expiry rule is proven (tests/protocol/test_crosschain_expiry.py); a chain
# outside them is refused rather than routed over unproven
MAX_BLOCK_TIME = 600
MAX_CONFIRMATIONS = 100
MAX_REGISTER_TIME = 3600
MAX_CLOCK_SKEW = 900


@dataclass(frozen=True, slots=True)
class ChainTiming:
    """How a chain's time behaves, as far as claiming a lock on it goes.

    `block_time`: the longest gap between two blocks (seconds); `confirmations`: blocks a node waits before
    it trusts a log; `register_time`: the longest a secret registration waits to be mined; `clock_skew`:
    how far the chain's block timestamps may be from true time, either way.
    """

    chain_id: int
    block_time: int
    confirmations: int
    register_time: int
    clock_skew: int = 15

    def __post_init__(self) -> None:
        bounds = (("chain_id", self.chain_id, 1, 1 << 64), ("block_time", self.block_time, 1, MAX_BLOCK_TIME),
                  ("confirmations", self.confirmations, 0, MAX_CONFIRMATIONS),
                  ("register_time", self.register_time, 0, MAX_REGISTER_TIME),
                  ("clock_skew", self.clock_skew, 0, MAX_CLOCK_SKEW))
        for name, value, low, high in bounds:
            if type(value) is not int or not low <= value <= high:
                raise CrossChainError(f"{name} must be an integer in [{low}, {high}], got {value!r}")

    @property
    def finality(self) -> int:
        """Seconds until a block is buried under `confirmations` more."""
        return self.confirmations * self.block_time

    @property
    def min_reveal_timeout(self) -> int:
        """The least reveal timeout a channel on this chain may use: a block for the tick that triggers
        the registration, its mining, and its burial; plus one finality to see a reveal on this chain."""
        return self.block_time + self.register_time + 2 * self.finality


def crossing_margin(downstream: ChainTiming, upstream: ChainTiming) -> int:
    """Seconds a mediator keeps between its outgoing lock's expiry (on `downstream`) and its incoming one's
    (on `upstream`): a reveal stamped at the last moment downstream is final `downstream.finality` later,
    each clock may be off by its skew, and then the upstream registration needs its reveal timeout."""
    return downstream.clock_skew + downstream.finality + upstream.clock_skew + upstream.min_reveal_timeout


@dataclass(frozen=True, slots=True)
class Leg:
    """One lock of a route: on the chain `timing` describes, in a channel with `reveal_timeout`;
    `margin` is what its sender (a mediator) announced it keeps at least (0: nothing beyond the rule)."""

    timing: ChainTiming
    reveal_timeout: int
    margin: int = 0

    def __post_init__(self) -> None:
        if type(self.reveal_timeout) is not int or not 0 < self.reveal_timeout < MAX_LOCK_LIFETIME:
            raise CrossChainError(f"reveal timeout must be in (0, {MAX_LOCK_LIFETIME}) seconds")
        if type(self.margin) is not int or not 0 <= self.margin < MAX_LOCK_LIFETIME:
            raise CrossChainError(f"margin must be in [0, {MAX_LOCK_LIFETIME}) seconds")


def mediator_delta(upstream: Leg, downstream: Leg) -> int:
    """How much earlier the mediator between two legs makes its outgoing lock expire.

    On one chain the mediator keeps the upstream channel's reveal timeout (the single-chain rule; one
    clock, so no skew) or its announced margin if longer; across chains also the crossing margin.
    """
    keep = max(upstream.reveal_timeout, downstream.margin)
    if upstream.timing.chain_id == downstream.timing.chain_id:
        return keep
    return max(keep, crossing_margin(downstream.timing, upstream.timing))


def route_expiries(legs: Sequence[Leg], now: int, slack: int) -> tuple[int, ...]:
    """Each leg's lock expiration, as a timestamp of that leg's chain (`now`: true time, in seconds).

    The last leg must outlive `now` by `slack` (the time the transfer takes to arrive), the target's
    reveal timeout and its chain's skew; each earlier leg expires `mediator_delta` later than the next,
    and never sooner than its own channel accepts. `ExpiryTooFar` when a lock would live too long.
    """
    if not legs or type(now) is not int or now < 0 or type(slack) is not int or slack < 0:
        raise CrossChainError("a route needs at least one leg, a time and a non-negative slack")
    expiries = [0] * len(legs)
    for i in range(len(legs) - 1, -1, -1):
        leg = legs[i]
        earliest = now + slack + leg.reveal_timeout + leg.timing.clock_skew
        later = 0 if i == len(legs) - 1 else expiries[i + 1] + mediator_delta(leg, legs[i + 1])
        expiries[i] = max(earliest, later)
    for leg, expiry in zip(legs, expiries, strict=True):
        # the lock must pass "at most now + MAX_LOCK_LIFETIME" even on a chain whose clock runs ahead
        if expiry > now - leg.timing.clock_skew + MAX_LOCK_LIFETIME:
            raise ExpiryTooFar(f"the route needs a lock on chain {leg.timing.chain_id} until {expiry}, "
                               f"more than {MAX_LOCK_LIFETIME} s from now ({now})")
    return tuple(expiries)


# --- route metadata with a conversion ------------------------------------------------------------------


def conversion_route(before: Sequence[bytes], converter: bytes, into: Asset,
                     after: Sequence[bytes]) -> tuple[bytes, ...]:
    """The route a payer sends: hops up to the converter, its asset marker, then the hops after it.

    Mediators before the converter read only their own entry and the next one, so the marker passes
    them untouched; the converter finds it right after itself and forwards the rest.
    """
    return (*before, converter, into.marker, *after)


@dataclass(frozen=True, slots=True)
class ChainTick:
    """The latest block timestamp of chain `chain_id` (a converter sees two clocks, not one)."""

    chain_id: int
    now: int


@dataclass(frozen=True, slots=True)
class ConversionState:
    """A converter's view of one payment: the mediator state (whose `now` is the payee chain's clock, the
    one its payee lock expires by), the two chains, and the terms the amount was converted at."""

    inner: MediatorState
    payer_chain: int
    payee_chain: int
    terms: ConversionTerms


ConversionTransition = tuple[ConversionState, list[TransferEffect]]


@dataclass(frozen=True, slots=True)
class Converter:
    """What a converter needs to forward across: its terms into `into`, the two chains' timings, and its
    channels in the asset it forwards, by partner address."""

    into: Asset
    terms: ConversionTerms
    upstream: ChainTiming
    downstream: ChainTiming
    channels_by_partner: Mapping[bytes, ChannelState]


def start_conversion(received: EventLockReceived, payer: ChannelState,
                     converter: Converter) -> ConversionTransition:
    """Forward a lock received in X as a lock in Y, or refuse (forward nothing: the payer's lock expires).

    The outgoing lock is never worth more than the incoming one at our terms, and expires
    `mediator_delta` earlier, so the secret learnt downstream at the last moment still claims upstream.
    """
    lock = received.lock
    refused = MediatorState(lock.secrethash, received.payment_id, received.channel_id, lock, None, None,
                            payer.now)
    state = ConversionState(refused, payer.chain_id, converter.into.chain_id, converter.terms)
    try:
        payee, out, rest = _conversion_out(received, payer, converter)
    except BadRoute as exc:
        return replace(state, inner=replace(refused, refusal=str(exc))), []
    send = ActionSendLockedTransfer(received.payment_id, out.amount, out.expiration, lock.secrethash,
                                    received.initiator, received.target, encode_route(rest))
    inner = replace(refused, payee_channel=payee.channel_id, payee_lock=out, now=payee.now,
                    payee_outcome=LockOutcome.PENDING)
    return replace(state, inner=inner), [ChannelDo(payee.channel_id, send)]


def _conversion_out(received: EventLockReceived, payer: ChannelState,
                    converter: Converter) -> tuple[ChannelState, Lock, tuple[bytes, ...]]:
    """The payee channel, the converted lock and the route it carries on, or `BadRoute` saying why not."""
    route = decode_route(received.metadata)
    if route[0] != payer.our.address:
        raise BadRoute(f"the route names 0x{route[0].hex()} where we (0x{payer.our.address.hex()}) belong")
    if len(route) < 3 or route[1] != converter.into.marker:
        raise BadRoute(f"the route does not ask us to convert into {converter.into}")
    if converter.upstream.chain_id != payer.chain_id:
        raise BadRoute(f"the lock arrived on chain {payer.chain_id}, our terms convert from chain "
                       f"{converter.upstream.chain_id}")
    rest = route[2:]
    if len(set(rest)) != len(rest) or payer.our.address in rest or payer.partner.address in rest:
        raise BadRoute("the route visits a node twice or turns back")
    payee = converter.channels_by_partner.get(rest[0])
    if payee is None or payee.status is not ChannelStatus.OPEN or payee.chain_id != converter.into.chain_id:
        raise BadRoute(f"no open channel on chain {converter.into.chain_id} with 0x{rest[0].hex()}")
    if payer.reveal_timeout < converter.upstream.min_reveal_timeout:
        raise BadRoute(f"our reveal timeout {payer.reveal_timeout} on chain {payer.chain_id} is below the "
                       f"{converter.upstream.min_reveal_timeout} s that chain needs: we do not convert")
    amount = converter.terms.amount_out(received.lock.amount)
    if amount <= 0:
        raise BadRoute(f"lock of {received.lock.amount} does not cover our fee at {converter.terms}")
    delta = mediator_delta(Leg(converter.upstream, payer.reveal_timeout),
                           Leg(converter.downstream, payee.reveal_timeout))
    out = Lock(amount, received.lock.expiration - delta, received.lock.secrethash)
    problem = lock_problem(payee, payee.our, out)
    if problem is not None:
        raise BadRoute(f"cannot forward on chain {payee.chain_id}: {problem}")
    if balance(payee.our, payee.partner, locked=payee.our.locked + amount) < 0:
        raise BadRoute(f"insufficient capacity toward 0x{rest[0].hex()}: {payee.our_balance()} < {amount}")
    return payee, out, rest


def handle_conversion(state: ConversionState, event: object) -> ConversionTransition:
    """Apply one input to a converted payment. Ticks must name their chain: only the payee chain's clock
    decides whether the payee lock is still owed (the payer channel's machine watches its own chain)."""
    if isinstance(event, ActionTick):
        raise LocalFault("a converter needs a ChainTick naming the chain, not an ActionTick")
    if isinstance(event, ChainTick):
        if event.chain_id != state.payee_chain:
            return state, []
        event = ActionTick(event.now)
    inner, effects = handle_mediator(state.inner, event)
    return replace(state, inner=inner), effects


# --- the converter's stored record ----------------------------------------------------------------------

CONVERSION_RECORD_KIND = 4  # after the initiator (1), mediator (2) and target (3) kinds of _transfer_record


def conversion_to_record(state: ConversionState) -> bytes:
    """`[1, 4, mediator record, payer chain, payee chain, numerator (32 bytes), denominator (32 bytes),
    fee base, fee ppm]`: the inner machine keeps its own layout (`transfer_to_record`)."""
    t = state.terms
    return msgpack.packb([TRANSFER_RECORD_VERSION, CONVERSION_RECORD_KIND, transfer_to_record(state.inner),
                          state.payer_chain, state.payee_chain, t.numerator.to_bytes(32, "big"),
                          t.denominator.to_bytes(32, "big"), t.fees.base, t.fees.ppm], use_bin_type=True)


def payment_from_record(record: bytes) -> TransferState | ConversionState:
    """Any stored payment machine: a converter's, or one of `transfer_from_record`'s."""
    try:
        fields = msgpack.unpackb(record, raw=False, use_list=True, strict_map_key=True)
    except (ValueError, msgpack.ExtraData) as exc:
        raise CorruptRecord(f"payment record does not parse: {exc}") from None
    if type(fields) is not list or len(fields) < 2 or fields[1] != CONVERSION_RECORD_KIND:
        return transfer_from_record(record)
    try:
        _, _, inner, payer_chain, payee_chain, numerator, denominator, fee_base, fee_ppm = fields
        mediator = transfer_from_record(inner)
        terms = ConversionTerms(int.from_bytes(numerator, "big"), int.from_bytes(denominator, "big"),
                                FeePolicy(fee_base, fee_ppm))
    except (ValueError, TypeError, ChanneldError) as exc:
        raise CorruptRecord(f"conversion record does not parse: {exc}") from None
    chains = (payer_chain, payee_chain)
    if not isinstance(mediator, MediatorState) or any(type(chain) is not int for chain in chains):
        raise CorruptRecord("a conversion record holds a mediator and two chain ids")
    return ConversionState(mediator, payer_chain, payee_chain, terms)


def payment_to_record(state: TransferState | ConversionState) -> bytes:
    if isinstance(state, ConversionState):
        return conversion_to_record(state)
    return transfer_to_record(state)
