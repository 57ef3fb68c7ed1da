"""docs/benchmarks.md: method, figures against their targets, the field's reference points, the profile."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks._profile import Hotspot, Profile
from benchmarks._report import Result, table

METHOD = """\
## How it is measured

Everything runs on this machine over loopback, as separate processes: a private **anvil** with the
ChannelHub contract, real **`channeld node`** daemons (`python -m channeld.cli node`, LevelDB store, BOLT 8
transport, control API), and a **load generator** process.

- **Direct, two daemons** (`direct_*`): the payer daemon drives the load itself through its admin-only
  load path `POST /api/v1/bench/pay` (`benchmarks/direct.py`, written with the node): it applies
  `ActionPay` on the same code path as every payment (risk limits aside) and keeps a window of unanswered
  payments. Durable end to end: the payer commits (fsync) each proof before sending it, the payee commits
  it before acknowledging, and a payment counts once the payer has committed the acknowledgement. The
  payer is pinned to one core, the payee to the other. Each daemon's CPU time per payment is read from
  `/proc`; `direct_cpu_bound_pps` (one over the busier daemon's CPU per payment) is what the pair would
  do with a core each to itself, which on a shared machine the wall-clock rate does not show.
- **A wallet into a daemon** (`wallet_direct_*`, and the load of the many-channel and long-life cases):
  `benchmarks/_wallet.py` builds wallets from the project's own pieces, as a third-party wallet would be
  built (a secp256k1 key, a BOLT 8 session from `channeld.transport`, the pure machine from
  `channeld.protocol`, a LevelDB store from `channeld.store`). Each wallet opens its channel on chain
  itself (`openChannel` with its deposit); the daemon learns of it from the contract's events and
  announces it. The wallet commits every new state before it sends the payment that depends on it; a
  payment counts when its `PaymentAccepted` is back. The daemon is pinned to one core and the wallets'
  process to the other, and both processes' busy shares are reported, so a reader can see which side
  limited the rate.
- **Windows**: pipelined is up to 64 unanswered payments on the channel (the protocol's
  `MAX_IN_FLIGHT`), then a window of 8, then one at a time (the next payment when the previous one is
  accepted; latency is from `ActionPay`, before signing, to the acceptance).
- **Control API**: daemon A pays daemon B over their channel through `POST /api/v1/payments`
  (bearer token, JSON), the call returning once B accepted: what a wallet or shop server sees end to end.
  16 requests outstanding for throughput (and 64, reported beside it), one at a time for latency. The
  API's per-token rate limit (`node.api_rate`) is lifted for the payer: it would measure the limit.
- **Many channels**: one daemon, 1,000 wallets, each with its own key, session and channel; each wallet
  pays one payment at a time, all wallets at once, so about 1,000 payments are in flight.
- **The floor**: `benchmarks/floor.py`, the protocol's own `balance_proof_digest`, `Signer.sign` (payer)
  and `KnownKey.check` (payee: recover and compare, the check the protocol really does), in a tight loop,
  the two sides in two processes at once. `floor_pps` is the slower side; `floor_ratio` is direct
  pipelined throughput over it (min/max of the ratio pair the extremes of both figures). The same per
  CPU-second (`floor_cpu_pps`, `floor_ratio_cpu`) compares what each would do on a core of its own.
  Beside it, one fsynced LevelDB commit (`durable_commit_*`): each side needs one per payment, or per
  group of payments when commits are grouped.
- **Start-up**: process spawn to the daemon's readiness file, with the store filled with 10,000 channel
  records and 10,000 peer records written by the node's own record code (creating 10,000 channels
  through anvil would take many minutes); the chain holds none of them, so no events are replayed.
- **Long life**: 16 wallets pay the daemon N payments in all (up to 8 unanswered each), in ten chunks
  (so any slow-down with history shows); then the store's size on disk, and restarts (process spawn to
  ready).
- Each figure is the median of several runs (the count is in `docs/benchmarks.json`), with min and max.
  The machine is shared with other work, so figures are noisy; the min-max spread shows how much.
"""

FIELD = """\
## Reference points from the field

- **Raiden** reported direct payments taking 1 to 7 s each (about 2.1 s on average in its light client's
  test of 50 transfers), and called 17 payments per second hard to reach.
- The published **Lightning** load test (two nodes, 10 channels, 100 workers, 8 vCPUs) measured
  **Eclair 89**, **Core Lightning 61** and **LND 33** payments per second, at 1.1 to 3.0 s average latency.
- A re-run found **LND's database at 5.5 GB after about 1M payments** and a **14-minute restart**.
"""


def render(results: Sequence[Result], profile: Profile | None, run_info: dict[str, Any]) -> str:
    lines = ["# Benchmarks", "",
             "Written by `make bench` (`python -m benchmarks`); the same figures are in",
             "[benchmarks.json](benchmarks.json). Targets are the project's; a miss is reported, never "
             "hidden.", "",
             f"Run: {run_info['date']}, {run_info['cores']} cores, sizes `{run_info['sizes']}`, whole run "
             f"{run_info['seconds']:.0f} s. The machine is shared: its load average (runnable processes, "
             f"on {run_info['cores']} cores) was {run_info.get('load_average_at_start', 0):.1f} at the start "
             f"and {run_info.get('load_average_at_end', 0):.1f} at the end.", "",
             "![benchmark figures](benchmarks.png)", "", "## Figures", "", *table(results), ""]
    lines += [_case_times(run_info), "", METHOD, FIELD]
    if profile is not None:
        lines += _profile_section(profile)
    return "\n".join(lines) + "\n"


def _case_times(run_info: dict[str, Any]) -> str:
    parts = [f"{name} {seconds:.0f} s" for name, seconds in run_info["case_seconds"].items()]
    return "Time per case: " + ", ".join(parts) + "."


FINDINGS = """\
What the profiles and the busy figures above say (read with the tables below):

- **One channel is bounded by its payer, not by the daemon.** In the pipelined case the paying wallet's
  process is close to a full core (`direct_pipelined_wallet_cpu`) while the payee daemon is far from it
  (`direct_pipelined_daemon_cpu`). A payer daemon runs the same protocol code as the wallet, so it would
  be bounded the same way.
- **The payer's largest cost is re-encoding the channel record on every state change.** The protocol's
  `transition()` returns `Persist(to_record(new))` eagerly, and `to_record` re-encodes every in-flight
  `Payment` (up to 64 when pipelined) through the wire codec. Each payment therefore costs O(window)
  message encodings, twice (when it is made and when it is accepted): `encode`, `msgpack.packb`,
  `_codec.encode`, `to_wire` and `to_record` lead the payer's profile. Only the last record of a channel
  in a store round is ever written, so encoding it once per round (a lazy `Persist` that carries the state,
  or in-flight payments stored under their own keys, written once) removes most of this work.
- The signature itself (`secp256k1_ecdsa_sign_recoverable` on the payer, `secp256k1_ecdsa_recover` on the
  payee) is a few percent of either profile: the floor is far away (`floor_ratio`).
- Next come the per-message costs on both sides: the BOLT 8 framing and ChaCha20-Poly1305 per message
  (`_connection.send`, `_read_loop`), trio's scheduling, the hand-off of each store round to the
  writer thread (`SimpleQueue.put`), and `dataclasses.replace` for the immutable states.
- **Latency one at a time**: a payment waits for two fsynced commits in series (the payer's, then the
  payee's before it acknowledges; `durable_commit_p50_ms` each on this disk), for the hand-off of each
  to its store's writer thread and back, two loopback hops with BOLT 8 encryption, and the trio
  wake-ups; what the one-at-a-time p50 holds beyond two commits is software overhead. p99 follows the
  disk's tail (`durable_commit_p99_ms`) and the scheduling of a machine shared with other work.
- **The control API** adds HTTP parsing, pydantic validation and JSON on top of a direct payment, and a
  request returns only once the partner's acceptance is durable at the payer; the busy figures show
  whether the daemons or the HTTP client limit it.
"""


def _profile_section(profile: Profile) -> list[str]:
    lines = ["## What holds throughput back (profile of the direct pipelined case)", "", FINDINGS, "",
             f"Profiled: {profile.method}; {profile.pps:,.0f} payments/s while profiled (profiling slows "
             "it). pyinstrument samples each process's main thread, counted from the start of its trio "
             "loop (imports excluded). Idle is the loop waiting in `epoll`, for a peer's message or for "
             "a commit's fsync in the store's writer thread; the shares below are of the busy rest.", ""]
    for side in profile.sides:
        lines += [f"{side.name}: idle {side.idle:.0%} of its loop's time; busy time by function (self):",
                  "", *_hotspot_rows(side.busiest), ""]
    return lines


def _hotspot_rows(spots: Sequence[Hotspot]) -> list[str]:
    rows = ["| share | function |", "|---|---|"]
    rows += [f"| {spot.share:.1%} | `{spot.function}` |" for spot in spots]
    return rows
