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
  16 requests outstanding for throughput (and 64, reported beside it, and 16 with an `Idempotency-Key`
  on every payment), one at a time for latency. The API's per-token rate limit (`node.api_rate`) is
  lifted for the payer: it would measure the limit. The client keeps one keep-alive connection per
  outstanding request (`benchmarks/_http.py`, h11 over trio): httpx's pool cost 4.8 ms of CPU per
  request at 64 outstanding and was itself the bottleneck.
  `api_batch_*`: the same payments as a shop's payout run, `POST /api/v1/payments/batch` of 100
  payments per request with 4 requests outstanding (latency is per batch).
- **Multi-hop** (`two_hop_*`, `three_hop_*`): three or four daemons in a line, each with a funded channel
  to the next (announced quickly: `routing.gossip_interval = 1s`). The payee issues one payment request
  per payment beforehand (untimed, as a shop makes its invoice first); the payer pays them through
  `POST /api/v1/payments` with 16 outstanding for throughput and one at a time for latency, and again
  through its load path `POST /api/v1/bench/pay-requests` (`*_node_*`: the node pays the list itself,
  each payment as `POST /payments` would, without HTTP per payment). A payment counts when it is
  accepted: locked at every hop, the secret (the receipt) durable back at the payer. Every daemon's CPU
  per payment is read from /proc (`*_cpu_us`); the daemons poll the chain at the default 2 s.
- **Many channels**: one daemon, 1,000 wallets, each with its own key, session and channel; each wallet
  pays one payment at a time, all wallets at once, so about 1,000 payments are in flight. The hub
  forwards (the default); the wallets ask for no gossip (see below).
- **The floor**: `benchmarks/floor.py`, the protocol's own `balance_proof_digest`, `Signer.sign` (payer) and
  `KnownKey.check_rs` (payee: ECDSA verification against the partner's key, the check the protocol does), in
  a tight loop, the two sides in two processes at once. `floor_pps` is the slower side; `floor_ratio` is
  direct pipelined throughput over it (min/max of the ratio pair the extremes of both figures). The same per
  CPU-second (`floor_cpu_pps`, `floor_ratio_cpu`) compares what each would do on a core of its own. Beside
  it, one fsynced LevelDB commit (`durable_commit_*`): each side needs one per payment, or per group of
  payments when commits are grouped.
- **Start-up**: process spawn to the daemon's readiness file, with the store filled with 10,000 channel
  records and 10,000 peer records written by the node's own record code (creating 10,000 channels
  through anvil would take many minutes); the chain holds none of them, so no events are replayed.
- **Long life**: 16 wallets pay the daemon N payments in all (up to 8 unanswered each), in ten chunks
  (so any slow-down with history shows); then the size on disk of the state store (without its audit
  log), of the audit log's segments and of the journal, and restarts (process spawn to ready, with the
  daemon's CPU until ready and a bare import timed before each).
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
             f"Run: {run_info['date']}, {run_info['cores']} cores, sizes `{run_info['sizes']}`, "
             f"{_cases_line(run_info)}, {run_info['seconds']:.0f} s. The machine is shared: its load average "
             "(runnable processes, "
             f"on {run_info['cores']} cores) was {run_info.get('load_average_at_start', 0):.1f} at the start "
             f"and {run_info.get('load_average_at_end', 0):.1f} at the end.", "",
             "![benchmark figures](benchmarks.png)", "", "## Figures", "", *table(results), ""]
    lines += [_case_times(run_info), "", METHOD, FIELD]
    if profile is not None:
        lines += _profile_section(profile)
    return "\n".join(lines) + "\n"


def _cases_line(run_info: dict[str, Any]) -> str:
    ran = run_info.get("cases_this_run")
    if not ran or len(ran) == 8:
        return "all cases"
    return f"cases {', '.join(ran)} (the other figures from earlier runs, listed in Time per case)"


def _case_times(run_info: dict[str, Any]) -> str:
    loads = run_info.get("case_load", {})
    parts = [f"{name} {seconds:.0f} s" + (f" (load average {loads[name]:.0f})" if name in loads else "")
             for name, seconds in run_info["case_seconds"].items()]
    return "Time per case: " + ", ".join(parts) + "."


FINDINGS = """\
What the figures and the profiles say (written from the run of 2026-11-25 on the shared two-core
development machine; check them against the tables after a new run):

- **On a shared machine the wall-clock rates mostly measure the neighbours.** The load average beside
  the run date counts runnable processes on two cores; at 10 to 20 each benchmark process gets a small
  slice of a core, and even the floor (a tight loop with no IO) falls far below what one core does (in
  this session's runs the load average was between 9 and 23, from other engineers' test suites).
  The CPU-time figures are steadier: each daemon's CPU per payment (`direct_pipelined_payer_cpu_us`,
  `direct_pipelined_payee_cpu_us`), the rate that implies with a core per daemon
  (`direct_cpu_bound_pps`), and the floor per CPU-second (`floor_cpu_pps`, `floor_ratio_cpu`). A run on
  a quiet machine is the one to compare with the targets.
- **Pipelined, both daemons are idle most of the time**: the profiles below show the payer's trio loop
  idle about three quarters of its time and the payee's about half, during a window of 64. Throughput is
  then window / latency: each payment needs three commits in series (the payer's proof, the payee's
  acceptance, the payer's record of the acknowledgement), two loopback hops and the wake-ups between
  trio and the store's writer thread, on a machine where every one of those steps waits for a core.
- **Per payment, a daemon spends three to four times the floor's CPU.** The floor is one digest and one
  signature (payer, about 35 µs of CPU) or one verification against the partner's key (payee, about
  43 µs); each daemon spent about 140 to 160 µs per pipelined payment in session 2's runs (200 to 270 µs
  in session 1's; docs/performance.md has the changes), so the pair would do 6,000 to 7,000 payments a
  second with a core each (`direct_cpu_bound_pps`), about a third of the floor (`floor_ratio_cpu`). The
  signature and the verification are the largest single items of the busy time
  (about an eighth on the payer, a sixth on the payee); the rest is Python object work spread thin:
  copying immutable states (`dataclasses.replace`), building and validating message and record objects
  (`__init__`, `__post_init__`), msgpack and wire encoding and decoding, trio's task plumbing, and the
  hand-off of each commit to the writer thread (`SimpleQueue.put`, `lock.release`). No single hot spot
  dominates; reaching the floor ratio means fewer objects per payment (mutable per-channel state in the
  node, encoded once per commit round), not a faster signature.
- **Latency one at a time** is those three commits (`durable_commit_p50_ms` each at best; a lone payment
  waits for a whole fsync at every step), the thread hand-offs and two loopback hops with encryption.
  p99 follows the disk's tail (`durable_commit_p99_ms`) and the machine's scheduling.
- **The control API** adds HTTP parsing (hypercorn, h11), body validation and JSON to each payment, and
  a call returns only once the payment is accepted. The paying daemon's CPU per payment
  (`api_payer_daemon_cpu_us`) is the limit: on this shared machine each daemon gets a slice of a core,
  and HTTP costs more than the payment. `POST /payments` is answered without FastAPI's per-request
  machinery (`channeld/api/_fastpay.py`), and idempotency records are written by the journal's writer
  thread instead of an fsync on the loop; docs/performance.md ("Control API") has before and after.
  A batch (`api_batch_*`) pays the HTTP request once per 100 payments: its CPU per payment is what the
  node's own payment path costs plus per-item validation and JSON (docs/performance.md, "Session 3:
  control API").
- **Multi-hop** goes through the control API (a payment request is what names the payee's hash), and
  each payment is a hash-locked transfer on every hop and an unlock back along the line once the
  secret is revealed, each step with its own commits on both sides of a channel: several times the
  commits of a direct payment, in series, which is where the three-hop latency goes. Throughput with 16
  outstanding (`two_hop_pps`, `three_hop_pps`) sits well under the direct API figure.
- **Many channels**: until session 2, 1,000 wallets stalled a forwarding hub after 3 to 4 payments
  each: every gossip interval it signed an announcement for each of its channels and sent all of them to
  every connected peer (1,000 x 1,000 messages ahead of the payments' acknowledgements), so the case ran
  with `routing.forward = no`. Announcements now go only to peers whose `Init` asks for gossip, signed
  once per change and sent incrementally (docs/performance.md, "Multi-hop and many channels"), and the
  case runs the hub forwarding.
- **Start-up** is dominated by Python importing the node's dependencies (`startup_imports_s`: web3,
  FastAPI, py-evm, py_ecc); with 10,000 channels in the store the node also ticks every channel with the
  chain's time on its first block and writes them all back, before it reports ready.
- **Long life**: the state store grows with channels, not with history (`store_bytes_per_payment`): the
  history is in the audit log's segment files (`audit_log_bytes_per_payment`, one ~147-byte frame per
  entry, `channeld/store/_auditlog.py`), and the store is compacted when it closes. The journal's event
  history (`journal_bytes_per_payment`) is pruned by age. A restart reads no history: it costs about what a
  bare import of the node's modules costs (`restart_imports_s`, `restart_cpu_s`).
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
