#!/usr/bin/env python3
"""Writes PERF.md (to stdout) from queue_bench's Google Benchmark JSON.

Usage: python3 bench/make_perf.py bench/results/queue_bench.json [--command "..."]
           [--runners bench/results/runner_bench.json]
           [--shuffle bench/results/shuffle_bench.json] [--ingest bench/results/ingest.json]
           [--trace bench/results/trace_overhead.json] > PERF.md

PERF.md is generated: never edit it by hand; rerun bench/run_perf.sh.

What it computes (queue_bench.cc explains the runs themselves):
  - Each run is tagged by its cross-PU round-trip probe, measured just before and just after it:
    near (both < NEAR_NS), far (both >= NEAR_NS), mixed (one of each: the vCPUs moved during
    the run), unknown (no probe). Placement can change between runs on a VM.
  - Per scenario and tag, a table of queues: medians over the runs with that tag.
  - Ratios and targets compare Conveyor with its peers ONLY within one tag (near with near, far
    with far; mixed and unknown runs are excluded), and only from medians of >= MIN_RUNS runs.
  - Within a scenario and tag, when every queue has >= MIN_RUNS quiet runs (other work took
    < QUIET_MAX of the CPUs, queue_bench's others_cpu_frac), only quiet runs are used, for the
    tables too; otherwise all runs are, and the ratio lines and tables say so.
  - With --runners, a last section "Queue runners: pinned vs unpinned" from runner_bench's JSON
    (bench/runner_bench.cc): per shape and tag, medians per placement policy, the pinned /
    unpinned ratio of medians and the median of same-round paired ratios; if that file does not
    exist, the section says how to produce it. Without --runners the output is as before.
  - With --shuffle, a section "Shuffle queue vs TF-style mutex shuffle queue" from
    shuffle_bench's JSON (bench/shuffle_bench.cc): per shape and tag, medians, the ratio of
    medians and the median of same-round paired ratios, and the 2-producer >= 3x target.
  - With --perf, the section "conveyor perf: Conveyor / best peer per scenario" from a
    `conveyor perf --json` document (bench/perf_report.py, which also draws the PNG plots into
    --perf-plots, default docs/perf) goes first, right under the title.
  - Commit and command: a results file stamped by run_perf.sh (context conveyor_commit and
    conveyor_run_command) reports the commit and command it was measured with, so a PERF.md
    regenerated later (RUNNERS_ONLY=1) does not attribute old numbers to a newer commit; an
    unstamped file falls back to --command and the current commit.
Standard library only.
"""

import os

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys

NEAR_NS = 250.0
MIN_RUNS = 5
QUIET_MAX = 0.10  # a run is quiet when other work took less than this share of the CPUs
TAGS = ("near", "far")  # the tags ratios are computed in
LATENCY_TOLERANCE = 1.10  # idle wake latency: "no worse than" allows 10% scheduler jitter

NAME_RE = re.compile(
    r"^BM_(?P<queue>[A-Za-z0-9]+)_(?P<scenario>[A-Za-z0-9]+)"
    r"/p:(?P<p>\d+)/c:(?P<c>\d+)/batch:(?P<batch>\d+)/rep:(?P<rep>\d+)"
)

SCENARIO_TEXT = {
    "Spsc1P1C": "1 producer on PU 0, 1 consumer on PU 1 (pinned)",
    "Mpmc2P2C": "2 producers, 2 consumers, unpinned",
    "Mpmc4P4C": "4 producers, 4 consumers, unpinned (oversubscribed: 8 threads on the PUs)",
    "SpscBatch32": "1 producer on PU 0, 1 consumer on PU 1 (pinned), batches of 32",
    "IdleConsumer": "pinned 1P1C; one item every 50 ms; consumer CPU and wake latency",
}
SCENARIO_ORDER = ["Spsc1P1C", "Mpmc2P2C", "Mpmc4P4C", "SpscBatch32", "IdleConsumer"]


# ---- reading ---------------------------------------------------------------------------------


def tag_of(before, after):
    if before is None or after is None or before < 0 or after < 0:
        return "unknown"
    near = (before < NEAR_NS, after < NEAR_NS)
    if near == (True, True):
        return "near"
    if near == (False, False):
        return "far"
    return "mixed"


def parse_kinds(text):
    """'Conveyor=block/bounded;...' -> {'Conveyor': ('block', 'bounded'), ...}"""
    kinds = {}
    for item in filter(None, (text or "").split(";")):
        name, _, kind = item.partition("=")
        wait, _, bound = kind.partition("/")
        kinds[name] = (wait, bound)
    return kinds


def load_runs(path):
    with open(path) as f:
        data = json.load(f)
    runs = []
    for b in data.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration":
            continue  # aggregates (mean/median/stddev of --benchmark_repetitions): we pool runs
        m = NAME_RE.match(b.get("run_name") or b["name"])
        if not m:
            continue
        run = {
            "queue": m["queue"],
            "scenario": m["scenario"],
            "rep": int(m["rep"]),
            "error": b.get("error_message") if b.get("error_occurred") else None,
        }
        for key in ("items_per_second", "cpu_s_per_Mitem", "vol_cs", "invol_cs", "items",
                    "rtt_before_ns", "rtt_after_ns", "consumer_cpu_frac",
                    "wake_latency_med_us", "wake_latency_p90_us", "cpu_s", "others_cpu_frac"):
            if key in b:
                run[key] = float(b[key])
        run["tag"] = tag_of(run.get("rtt_before_ns"), run.get("rtt_after_ns"))
        runs.append(run)
    return data.get("context", {}), runs


# ---- machine facts -----------------------------------------------------------------------------


def first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        return out.splitlines()[0].strip() if out else "unknown"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_now():
    try:
        with open("/proc/loadavg") as f:
            return ", ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def commit():
    rev = first_line(["git", "rev-parse", "--short", "HEAD"])
    dirty = first_line(["git", "status", "--porcelain", "--untracked-files=no"])
    if rev != "unknown" and dirty not in ("unknown", ""):
        rev += " (with uncommitted changes)"
    return rev


# ---- statistics --------------------------------------------------------------------------------


def med(values):
    return statistics.median(values) if values else None


def is_quiet(run):
    return run.get("others_cpu_frac", 0.0) < QUIET_MAX


def ok_runs(runs, queue, scenario, tag=None):
    return [r for r in runs
            if r["queue"] == queue and r["scenario"] == scenario and r["error"] is None
            and (tag is None or r["tag"] == tag)]


def fmt_rate(v):
    if v is None:
        return "-"
    if v >= 1e6:
        return f"{v / 1e6:.2f} M/s"
    return f"{v / 1e3:.1f} k/s"


def fmt(v, digits=3):
    if v is None:
        return "-"
    return f"{v:.{digits}g}"


def fixed2(v):
    return "-" if v is None else f"{v:.2f}"


def pct(v):
    return "-" if v is None else f"{100 * v:.0f}%"


def is_conveyor(queue):
    return queue.startswith("Conveyor")


# ---- sections ----------------------------------------------------------------------------------


class Report:
    def __init__(self, json_path, context, runs, command):
        self.json_path = json_path
        self.ctx = context
        self.runs = runs
        self.command = command
        self.kinds = parse_kinds(context.get("conveyor_queue_kinds"))
        self._quiet = {}
        self.scenarios = [s for s in SCENARIO_ORDER if any(r["scenario"] == s for r in runs)]
        self.scenarios += sorted({r["scenario"] for r in runs} - set(self.scenarios))

    def queues(self, scenario):
        seen = []
        for r in self.runs:
            if r["scenario"] == scenario and r["queue"] not in seen:
                seen.append(r["queue"])
        return sorted(seen, key=lambda q: (not is_conveyor(q), q))

    def wait_of(self, queue):
        return self.kinds.get(queue, ("?", "?"))[0]

    def bound_of(self, queue):
        return self.kinds.get(queue, ("?", "?"))[1]

    # Median of `key` over the runs of (queue, scenario, tag), or None below MIN_RUNS runs.
    def quiet_only(self, scenario, tag):
        """True when every queue with runs in (scenario, tag) has >= MIN_RUNS quiet ones."""
        key = (scenario, tag)
        if key not in self._quiet:
            counts = [sum(1 for r in ok_runs(self.runs, q, scenario, tag) if is_quiet(r))
                      for q in self.queues(scenario) if ok_runs(self.runs, q, scenario, tag)]
            self._quiet[key] = bool(counts) and min(counts) >= MIN_RUNS
        return self._quiet[key]

    def pool(self, queue, scenario, tag):
        """The runs the medians of (queue, scenario, tag) are taken over."""
        rs = ok_runs(self.runs, queue, scenario, tag)
        return [r for r in rs if is_quiet(r)] if self.quiet_only(scenario, tag) else rs

    def pool_note(self, scenario, tag):
        return "" if self.quiet_only(scenario, tag) else \
            f" (contended runs included: too few with others' CPU < {pct(QUIET_MAX)})"

    def robust(self, queue, scenario, tag, key):
        rs = [r[key] for r in self.pool(queue, scenario, tag) if key in r]
        return (med(rs), len(rs)) if len(rs) >= MIN_RUNS else (None, len(rs))

    def best(self, scenario, tag, candidates, key="items_per_second", highest=True):
        """(queue, median) of the candidate with the best robust median, or (None, None)."""
        scored = []
        for q in candidates:
            v, _ = self.robust(q, scenario, tag, key)
            if v is not None:
                scored.append((v, q))
        if not scored:
            return None, None
        v, q = max(scored) if highest else min(scored)
        return q, v

    def paired(self, conv, peer, scenario, key="items_per_second"):
        """Median over interleaved rounds of conv/peer, pairing only runs of the same round (rep)
        with the same placement tag (near or far). Used when the vCPUs moved during the run and
        no single tag has MIN_RUNS runs: each pair was measured minutes apart at most, in one
        placement. Returns (median ratio, pairs, tags) or (None, pairs, tags)."""
        by_rep = {}
        for r in ok_runs(self.runs, peer, scenario):
            if r["tag"] in TAGS and key in r:
                by_rep[r["rep"]] = r
        ratios, tags = [], set()
        for r in ok_runs(self.runs, conv, scenario):
            p = by_rep.get(r["rep"])
            if p is not None and r["tag"] == p["tag"] and key in r and p[key] > 0:
                ratios.append(r[key] / p[key])
                tags.add(r["tag"])
        return (med(ratios) if len(ratios) >= MIN_RUNS else None), len(ratios), sorted(tags)

    def paired_best(self, conv, scenario, peers, key="items_per_second"):
        """(peer, ratio, pairs, tags) for the peer that gives `conv` its lowest paired ratio."""
        worst = None
        for q in peers:
            ratio, n, tags = self.paired(conv, q, scenario, key)
            if ratio is not None and (worst is None or ratio < worst[1]):
                worst = (q, ratio, n, tags)
        return worst

    # -- noise --

    def noise_line(self):
        others = [r["others_cpu_frac"] for r in self.runs
                  if r["error"] is None and "others_cpu_frac" in r]
        if not others:
            return "Noise: not recorded."
        m, hi = med(others), max(others)
        verdict = ("a quiet machine" if m < 0.05 else
                   "some contention: read small differences as noise" if m < 0.25 else
                   "a busy machine: these numbers are noise-dominated, rerun when it is quiet")
        return (f"Noise: other work took a median {pct(m)} (max {pct(hi)}) of the machine's CPU "
                f"time during the measured windows ({verdict}). Placement tags of the "
                f"successful runs: {self.placement_summary()}.")

    def placement_summary(self):
        counts = {}
        for r in self.runs:
            if r["error"] is None:
                counts[r["tag"]] = counts.get(r["tag"], 0) + 1
        return ", ".join(f"{n} {t}" for t, n in sorted(counts.items())) or "none"

    # -- ratio lines --

    def ratio_lines(self):
        lines = []
        for sc in self.scenarios:
            if sc == "IdleConsumer":
                lines.extend(self.idle_ratio_lines(sc))
                continue
            qs = self.queues(sc)
            conv = [q for q in qs if is_conveyor(q)]
            peers = [q for q in qs if not is_conveyor(q)]
            wrote = False
            for tag in TAGS:
                peer, peer_v = self.best(sc, tag, peers)
                if peer is None:
                    continue
                parts = []
                for q in conv:
                    v, n = self.robust(q, sc, tag, "items_per_second")
                    if v is not None:
                        parts.append(f"{q} **{v / peer_v:.2f}x** ({fmt_rate(v)})")
                if not parts:
                    continue
                lines.append(f"- **{sc}** [{tag}]: Conveyor / best peer ({peer}, "
                             f"{fmt_rate(peer_v)}): " + "; ".join(parts)
                             + self.pool_note(sc, tag))
                wrote = True
            if not wrote:
                lines.append(f"- **{sc}**: no ratio: fewer than {MIN_RUNS} successful runs "
                             f"of Conveyor and of a peer with the same placement tag")
        return lines

    def idle_ratio_lines(self, sc):
        lines = []
        qs = self.queues(sc)
        blocking = [q for q in qs if not is_conveyor(q) and self.wait_of(q) == "block"]
        conv = [q for q in qs if is_conveyor(q) and self.wait_of(q) == "block"]
        for tag in TAGS:
            bq, blat = self.best(sc, tag, blocking, key="wake_latency_med_us", highest=False)
            if bq is None:
                continue
            bfrac, _ = self.robust(bq, sc, tag, "consumer_cpu_frac")
            parts = []
            for q in conv:
                lat, _ = self.robust(q, sc, tag, "wake_latency_med_us")
                frac, _ = self.robust(q, sc, tag, "consumer_cpu_frac")
                if lat is not None and frac is not None:
                    parts.append(f"{q} wake **{lat / blat:.2f}x** ({lat:.0f} us), consumer CPU "
                                 f"{100 * frac:.2f}%")
            if parts:
                lines.append(f"- **{sc}** [{tag}]: Conveyor / best blocking peer by wake latency "
                             f"({bq}, {blat:.0f} us, consumer CPU {100 * bfrac:.2f}%): "
                             + "; ".join(parts) + " (lower is better)"
                             + self.pool_note(sc, tag))
        if not lines:
            lines.append(f"- **{sc}**: no ratio: fewer than {MIN_RUNS} successful runs of "
                         "Conveyor and of a blocking peer with the same placement tag")
        return lines

    # -- targets --

    def targets(self):
        rows = []
        blocking = lambda qs: [q for q in qs if not is_conveyor(q) and self.wait_of(q) == "block"]
        spinning = lambda qs: [q for q in qs if not is_conveyor(q) and self.wait_of(q) == "spin"]

        def per_tag(sc, fn, paired_fn=None):
            out = []
            for tag in TAGS:
                res = fn(tag)
                if res is not None:
                    out.append((tag, res[0] + self.pool_note(sc, tag), res[1]))
            # The same-round paired comparison is always shown too: it pools every round in
            # which both queues ran in one placement, so it survives a vCPU move mid-run.
            if paired_fn is not None:
                res = paired_fn()
                if res is not None:
                    out.append(("paired", res[0], res[1]))
            if not out:
                out.append(("-", f"not measured (needs >= {MIN_RUNS} runs with one tag)", None))
            return out

        # 1. SPSC pinned
        def spsc(tag, sc="Spsc1P1C", need=1.5):
            qs = self.queues(sc)
            peer, pv = self.best(sc, tag, [q for q in qs if not is_conveyor(q)])
            conv, cv = self.best(sc, tag, [q for q in qs if is_conveyor(q)])
            if peer is None or conv is None:
                return None
            r = cv / pv
            return (f"{conv} {fmt_rate(cv)} / {peer} {fmt_rate(pv)} = {r:.2f}x", r >= need)

        def best_variant_paired(sc, peers_of):
            """The Conveyor variant with the best paired ratio against its worst-case peer."""
            best = None
            for c in [q for q in self.queues(sc) if is_conveyor(q)]:
                res = self.paired_best(c, sc, peers_of(sc))
                if res is not None and (best is None or res[1] > best[1][1]):
                    best = (c, res)
            return best

        def paired_text(c, res):
            peer, ratio, n, tags = res
            return f"{c} / {peer} = {ratio:.2f}x (median of {n} same-round pairs, {'+'.join(tags)})"

        def spsc_paired(sc="Spsc1P1C", need=1.5):
            best = best_variant_paired(sc, lambda s: [q for q in self.queues(s) if not is_conveyor(q)])
            if best is None:
                return None
            return (paired_text(*best), best[1][1] >= need)

        rows.append(("Spsc1P1C pinned: best Conveyor variant >= 1.5x best peer",
                     per_tag("Spsc1P1C", spsc, lambda: spsc_paired())))

        # 2. 4P4C. The issue bounds every queue to 1024 items "where the peer allows"; bounded
        # moodycamel livelocks there, so its unbounded mode also runs. The target row compares
        # bounded queues only (same back-pressure); a second row shows the unbounded peers,
        # which never make a producer wait, for context.
        def mpmc(tag, bounded_only, sc="Mpmc4P4C"):
            qs = self.queues(sc)
            if bounded_only:
                qs = [q for q in qs if is_conveyor(q) or self.bound_of(q) == "bounded"]
            cv, _ = self.robust("Conveyor", sc, tag, "items_per_second")
            ccpu, _ = self.robust("Conveyor", sc, tag, "cpu_s_per_Mitem")
            bq, bv = self.best(sc, tag, blocking(qs))
            sq, sv = self.best(sc, tag, spinning(qs))
            if cv is None or bq is None:
                return None
            bcpu, _ = self.robust(bq, sc, tag, "cpu_s_per_Mitem")
            checks = [cv / bv >= 3.0]
            text = f"Conveyor {fmt_rate(cv)}: {cv / bv:.2f}x best blocking ({bq} {fmt_rate(bv)})"
            if sq is not None:
                checks.append(cv / sv >= 1.0)
                text += f"; {cv / sv:.2f}x best spinning ({sq} {fmt_rate(sv)})"
            else:
                text += "; no spinning peer measured"
                checks.append(False)
            if ccpu is not None and bcpu is not None:
                checks.append(ccpu <= 0.5 * bcpu)
                text += (f"; CPU {fmt(ccpu)} s/M items vs {bq} {fmt(bcpu)} "
                         f"({ccpu / bcpu:.2f}x, needs <= 0.5x)")
            return (text, all(checks))

        def mpmc_paired(bounded_only, sc="Mpmc4P4C"):
            qs = self.queues(sc)
            if bounded_only:
                qs = [q for q in qs if is_conveyor(q) or self.bound_of(q) == "bounded"]
            b = self.paired_best("Conveyor", sc, blocking(qs))
            if b is None:
                return None
            sp = self.paired_best("Conveyor", sc, spinning(qs))
            cpu, n, _ = self.paired("Conveyor", b[0], sc, key="cpu_s_per_Mitem")
            checks = [b[1] >= 3.0, sp is not None and sp[1] >= 1.0, cpu is not None and cpu <= 0.5]
            text = f"blocking: {paired_text('Conveyor', b)}"
            text += f"; spinning: {paired_text('Conveyor', sp)}" if sp else "; no spinning peer"
            text += (f"; CPU per item Conveyor / {b[0]} = {cpu:.2f}x (needs <= 0.5x)"
                     if cpu is not None else "")
            return (text, all(checks))

        rows.append(("Mpmc4P4C, bounded queues (the issue's comparison): Conveyor >= 3x best "
                     "blocking peer, >= 1x best spinning peer, CPU s/item <= 0.5x the best "
                     "blocking peer's", per_tag("Mpmc4P4C", lambda t: mpmc(t, True),
                                                lambda: mpmc_paired(True))))
        rows.append(("Mpmc4P4C, unbounded peers included (context: they never make a producer "
                     "wait): same three checks", per_tag("Mpmc4P4C", lambda t: mpmc(t, False),
                                                         lambda: mpmc_paired(False))))

        # 3. batch-32
        def batch(tag, sc="SpscBatch32"):
            qs = self.queues(sc)
            bv, _ = self.robust("BoostSpsc", sc, tag, "items_per_second")
            conv, cv = self.best(sc, tag, [q for q in qs if is_conveyor(q)])
            if bv is None or conv is None:
                return None
            return (f"{conv} {fmt_rate(cv)} / BoostSpsc bulk {fmt_rate(bv)} = {cv / bv:.2f}x",
                    cv / bv >= 1.2)

        def batch_paired(sc="SpscBatch32"):
            best = best_variant_paired(sc, lambda s: ["BoostSpsc"])
            if best is None:
                return None
            return (paired_text(*best), best[1][1] >= 1.2)

        rows.append(("SpscBatch32: best Conveyor variant >= 1.2x boost spsc_queue bulk",
                     per_tag("SpscBatch32", batch, lambda: batch_paired())))

        # 4. idle
        def idle(tag, sc="IdleConsumer"):
            qs = self.queues(sc)
            conv = [q for q in qs if is_conveyor(q) and self.wait_of(q) == "block"]
            bq, blat = self.best(sc, tag, blocking(qs), key="wake_latency_med_us", highest=False)
            parts, checks = [], []
            for q in conv:
                frac, _ = self.robust(q, sc, tag, "consumer_cpu_frac")
                lat, _ = self.robust(q, sc, tag, "wake_latency_med_us")
                if frac is None or lat is None:
                    continue
                ok = frac <= 0.01 and (blat is None or lat <= blat * LATENCY_TOLERANCE)
                checks.append(ok)
                parts.append(f"{q}: CPU {100 * frac:.2f}%, wake {lat:.0f} us")
            if not parts or bq is None:
                return None
            text = "; ".join(parts) + (f" (best blocking peer {bq}: {blat:.0f} us; "
                                       f"latency passes up to {LATENCY_TOLERANCE:.2f}x it)")
            return (text, all(checks))

        rows.append(("IdleConsumer: each blocking Conveyor variant <= 1% consumer CPU and wake "
                     "latency no worse than the best blocking peer's",
                     per_tag("IdleConsumer", idle)))
        return rows

    # -- tables --

    def throughput_table(self, sc, tag):
        out = ["| queue | waits | bound | runs | items/s (median) | spread | CPU s / M items "
               "| vol. cs / M items | invol. cs / M items | RTT ns (before / after) "
               "| others' CPU |",
               "|---|---|---|---|---|---|---|---|---|---|---|"]
        for q in self.queues(sc):
            rs = self.pool(q, sc, tag) if tag in TAGS else ok_runs(self.runs, q, sc, tag)
            if not rs:
                continue
            ips = [r["items_per_second"] for r in rs]
            m = med(ips)
            spread = f"{100 * (max(ips) - min(ips)) / m:.0f}%" if m else "-"
            per_m = lambda key: med([r[key] / (r["items"] / 1e6) for r in rs if key in r])
            rtt = f"{fmt(med([r['rtt_before_ns'] for r in rs]))} / " \
                  f"{fmt(med([r['rtt_after_ns'] for r in rs]))}"
            col = lambda key: med([r[key] for r in rs if key in r])
            name = f"**{q}**" if is_conveyor(q) else q
            few = "" if len(rs) >= MIN_RUNS else " (few)"
            out.append(f"| {name} | {self.wait_of(q)} | {self.bound_of(q)} | {len(rs)}{few} | "
                       f"{fmt_rate(m)} | {spread} | {fmt(col('cpu_s_per_Mitem'))} "
                       f"| {fmt(per_m('vol_cs'))} | {fmt(per_m('invol_cs'))} | {rtt} "
                       f"| {pct(col('others_cpu_frac'))} |")
        return out

    def idle_table(self, sc, tag):
        out = ["| queue | waits | runs | consumer CPU (median) | wake latency median, us | "
               "wake latency p90, us | process CPU s / run | vol. cs / run | invol. cs / run "
               "| others' CPU |",
               "|---|---|---|---|---|---|---|---|---|---|"]
        for q in self.queues(sc):
            rs = self.pool(q, sc, tag) if tag in TAGS else ok_runs(self.runs, q, sc, tag)
            if not rs:
                continue
            col = lambda key: med([r[key] for r in rs if key in r])
            name = f"**{q}**" if is_conveyor(q) else q
            few = "" if len(rs) >= MIN_RUNS else " (few)"
            frac = col("consumer_cpu_frac")
            out.append(f"| {name} | {self.wait_of(q)} | {len(rs)}{few} | "
                       f"{'-' if frac is None else f'{100 * frac:.2f}%'} | "
                       f"{fmt(col('wake_latency_med_us'))} | {fmt(col('wake_latency_p90_us'))} | "
                       f"{fmt(col('cpu_s'))} | {fmt(col('vol_cs'))} | {fmt(col('invol_cs'))} | "
                       f"{pct(col('others_cpu_frac'))} |")
        return out

    def failures(self, sc):
        out = []
        for q in self.queues(sc):
            errs = [r for r in self.runs if r["queue"] == q and r["scenario"] == sc and r["error"]]
            if not errs:
                continue
            msgs = {}
            for r in errs:
                msgs.setdefault(r["error"], []).append(str(r["rep"]))
            for msg, reps in msgs.items():
                out.append(f"- {q}, rep {', '.join(reps)}: {msg}")
        return out

    # -- the document --

    def render(self):
        ctx = self.ctx
        L = []
        L.append("# PERF: Conveyor queue benchmarks")
        L.append("")
        L.append(f"Generated by `bench/make_perf.py` from `{self.json_path}`; do not edit by "
                 "hand (rerun `bench/run_perf.sh`).")
        L.append("")
        L.append("## Conveyor / best peer "
                 f"(same placement tag only, medians of >= {MIN_RUNS} runs)")
        L.append("")
        L.append(self.noise_line())
        L.append("")
        L.extend(self.ratio_lines())
        L.append("")
        L.append("## Targets")
        L.append("")
        L.append("| target | placement | measured | result |")
        L.append("|---|---|---|---|")
        for title, results in self.targets():
            for tag, text, passed in results:
                verdict = "-" if passed is None else ("**pass**" if passed else "**FAIL**")
                L.append(f"| {title} | {tag} | {text} | {verdict} |")
        L.append("")
        L.append("## Machine and build")
        L.append("")
        pus = ctx.get("conveyor_pus", "?")
        L.append(f"- CPU: {cpu_model()}; {ctx.get('num_cpus', '?')} logical CPUs, {pus} PUs "
                 f"visible to hwloc; {ctx.get('mhz_per_cpu', '?')} MHz; pinned runs use OS CPUs "
                 f"{ctx.get('conveyor_pinned_os_cpus', '?')}; host `{ctx.get('host_name', '?')}`")
        L.append(f"- Kernel: {ctx.get('kernel', 'not recorded')}")
        load = ctx.get("load_avg")
        if load:
            L.append(f"- Load average when the run started: "
                     f"{', '.join(f'{x:.2f}' for x in load)} (1, 5, 15 min); when this file was "
                     f"generated: {load_now()}. The first is other work on the machine (the "
                     f"benchmark has not started); near or above {ctx.get('num_cpus', '?')} it "
                     "shared the cores, and the numbers are noisy; the second includes the "
                     "benchmark's own threads.")
        L.append(f"- Commit: {ctx.get('conveyor_commit') or commit()}")
        L.append(f"- Compiler: {first_line(['g++', '--version'])} (queue_bench built by "
                 f"{ctx.get('conveyor_compiler', '?')}, "
                 f"flags `{ctx.get('conveyor_cxx_flags', '?')}`, "
                 f"{ctx.get('conveyor_build', '?')})")
        L.append(f"- Google Benchmark library build: {ctx.get('library_build_type', '?')} "
                 "(Debian's package; its warning about DEBUG does not touch our timing, which is "
                 "manual: wall time of the gated window)")
        L.append(f"- Date: {ctx.get('date', '?')}")
        command = ctx.get("conveyor_run_command") or self.command
        if command:
            L.append(f"- Command: `{command}`")
        L.append(f"- queue_bench command: `{ctx.get('conveyor_command', '?')}`")
        L.append(f"- Items per throughput run: {ctx.get('conveyor_items', '?')}; interleaved reps: "
                 f"{ctx.get('conveyor_reps', '?')}; time cap: {ctx.get('conveyor_cap_s', '?')} s; "
                 f"capacity: {ctx.get('conveyor_capacity', '?')} u64")
        L.append("")
        L.append("## How to read")
        L.append("")
        L.append(f"- Placement tag: a 1000-round-trip atomic ping-pong between PU 0 and PU 1 runs "
                 f"before and after every run; near = both medians < {NEAR_NS:.0f} ns, far = both "
                 f">= {NEAR_NS:.0f} ns, mixed = the vCPUs moved during the run (excluded from "
                 "ratios). Unpinned scenarios carry the tag of the machine at that moment.")
        L.append("- items/s and CPU are medians over runs; spread = (max - min) / median of "
                 "items/s; CPU is process CPU time (getrusage, all threads) per million items; "
                 "context switches are per million items (per run for IdleConsumer).")
        L.append("- others' CPU: the machine's busy time (/proc/stat, hypervisor steal "
                 "included) minus queue_bench's own, as a share of all CPUs over the run: how "
                 "much other work competed with the measurement (10 ms ticks: coarse on short "
                 f"runs). Where every queue of a scenario has >= {MIN_RUNS} quiet runs (< "
                 f"{pct(QUIET_MAX)}), tables, ratios and targets use those only.")
        L.append("- waits: spin = try loop with a short pause spin, then sched_yield; block = the "
                 "queue's own blocking call. bound: unbounded queues allocate when full "
                 "(moodycamel's normal mode; run where bounded moodycamel starves a producer).")
        L.append("")
        for sc in self.scenarios:
            L.append(f"## {sc}: {SCENARIO_TEXT.get(sc, '')}")
            L.append("")
            tags = [t for t in ("near", "far", "mixed", "unknown")
                    if any(r["scenario"] == sc and r["tag"] == t and r["error"] is None
                           for r in self.runs)]
            for tag in tags:
                if tag in TAGS:
                    note = (f" (quiet runs only: others' CPU < {pct(QUIET_MAX)})"
                            if self.quiet_only(sc, tag) else self.pool_note(sc, tag))
                else:
                    note = " (excluded from ratios)"
                L.append(f"### {tag}{note}")
                L.append("")
                L.extend(self.idle_table(sc, tag) if sc == "IdleConsumer"
                         else self.throughput_table(sc, tag))
                L.append("")
            fails = self.failures(sc)
            if fails:
                L.append("Runs that failed or were cut:")
                L.append("")
                L.extend(fails)
                L.append("")
        return "\n".join(L).rstrip() + "\n"


# ---- queue runners (runner_bench) ----------------------------------------------------------------

RUNNER_NAME_RE = re.compile(
    r"^BM_Runners_(?P<shape>[A-Za-z0-9]+)_(?P<policy>[a-z_]+)"
    r"/p:(?P<p>\d+)/c:(?P<c>\d+)/batch:(?P<batch>\d+)/rep:(?P<rep>\d+)"
)
RUNNER_MIN_RUNS = 3  # a ratio needs this many runs (or pairs) per side; < MIN_RUNS is marked few
RUNNER_BASELINE = "none"
RUNNER_REPRODUCE = "RUNNERS_ONLY=1 bench/run_perf.sh"


def load_runner_runs(path):
    with open(path) as f:
        data = json.load(f)
    runs = []
    for b in data.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration":
            continue
        m = RUNNER_NAME_RE.match(b.get("run_name") or b["name"])
        if not m:
            continue
        run = {"shape": m["shape"], "policy": m["policy"], "rep": int(m["rep"]),
               "p": int(m["p"]), "c": int(m["c"]), "batch": int(m["batch"]),
               "error": b.get("error_message") if b.get("error_occurred") else None}
        for key in ("items_per_second", "cpu_s_per_Mitem", "cpu_util", "vol_cs", "invol_cs",
                    "items", "rtt_before_ns", "rtt_after_ns", "others_cpu_frac", "stop_ms",
                    "surplus", "pinned"):
            if key in b:
                run[key] = float(b[key])
        run["tag"] = tag_of(run.get("rtt_before_ns"), run.get("rtt_after_ns"))
        runs.append(run)
    return data.get("context", {}), runs


def parse_pairs(text):
    """'a=x;b=y;' -> {'a': 'x', 'b': 'y'}"""
    out = {}
    for item in filter(None, (text or "").split(";")):
        k, _, v = item.partition("=")
        out[k] = v
    return out


class RunnerReport:
    def __init__(self, json_path, context, runs):
        self.json_path = json_path
        self.ctx = context
        self.runs = runs
        self.shapes = []
        for r in runs:
            if r["shape"] not in self.shapes:
                self.shapes.append(r["shape"])
        self._quiet = {}

    def policies(self, shape):
        seen = [p for p in ("none", "compact", "scatter", "numa_local", "explicit")
                if any(r["shape"] == shape and r["policy"] == p for r in self.runs)]
        return seen + sorted({r["policy"] for r in self.runs if r["shape"] == shape} - set(seen))

    def ok(self, shape, policy, tag):
        return [r for r in self.runs if r["shape"] == shape and r["policy"] == policy
                and r["error"] is None and r["tag"] == tag]

    def quiet_only(self, shape, tag):
        """As the queue section: quiet runs only when every policy has >= MIN_RUNS of them."""
        key = (shape, tag)
        if key not in self._quiet:
            counts = [sum(1 for r in self.ok(shape, p, tag) if is_quiet(r))
                      for p in self.policies(shape) if self.ok(shape, p, tag)]
            self._quiet[key] = bool(counts) and min(counts) >= MIN_RUNS
        return self._quiet[key]

    def pool(self, shape, policy, tag):
        rs = self.ok(shape, policy, tag)
        return [r for r in rs if is_quiet(r)] if self.quiet_only(shape, tag) else rs

    def median_of(self, shape, policy, tag, key):
        vs = [r[key] for r in self.pool(shape, policy, tag) if key in r]
        return med(vs), len(vs)

    def paired(self, shape, policy, tag, key):
        """Median over rounds of policy / baseline, both runs of the round in `tag` (and in the
        pool); returns (ratio or None, pairs)."""
        base = {r["rep"]: r for r in self.pool(shape, RUNNER_BASELINE, tag) if key in r}
        ratios = [r[key] / base[r["rep"]][key] for r in self.pool(shape, policy, tag)
                  if key in r and r["rep"] in base and base[r["rep"]][key] > 0]
        return (med(ratios) if len(ratios) >= RUNNER_MIN_RUNS else None), len(ratios)

    def tags(self, shape):
        return [t for t in ("near", "far", "mixed", "unknown")
                if any(r["shape"] == shape and r["tag"] == t and r["error"] is None
                       for r in self.runs)]

    def shape_text(self, shape):
        rs = [r for r in self.runs if r["shape"] == shape]
        p, c, b = rs[0]["p"], rs[0]["c"], rs[0]["batch"]
        text = (f"{p} runner enqueue thread{'s' if p > 1 else ''} "
                f"({'enqueue_many ' + str(b) if b > 1 else 'enqueue'} per op run), "
                f"{c} consumer{'s' if c > 1 else ''} "
                f"({'dequeue_many ' + str(b) if b > 1 else 'dequeue'})")
        pus = int(self.ctx.get("conveyor_pus", "0") or 0)
        if pus and p + c > pus:
            text += f"; {p + c} threads on {pus} PUs (oversubscribed)"
        return text

    def ratio_cells(self, shape, policy, tag, key):
        """'ratio of medians | paired ratio (pairs)' cells of policy / baseline for `key`."""
        base, nb = self.median_of(shape, RUNNER_BASELINE, tag, key)
        v, nv = self.median_of(shape, policy, tag, key)
        if base and v is not None and min(nb, nv) >= RUNNER_MIN_RUNS:
            of_medians = f"**{v / base:.2f}x**" + (" (few)" if min(nb, nv) < MIN_RUNS else "")
        else:
            of_medians = "-"
        pr, n = self.paired(shape, policy, tag, key)
        paired = f"{pr:.2f}x ({n})" if pr is not None else f"- ({n})"
        return f"{of_medians} | {paired}"

    def summary_table(self):
        out = ["| shape | tag | policy | runs (pinned / unpinned) | items/s pinned | items/s "
               "unpinned | items/s ratio of medians | items/s paired (pairs) | CPU s / M items "
               "pinned | CPU s / M items unpinned | CPU ratio of medians | CPU paired (pairs) |",
               "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for shape in self.shapes:
            for tag in TAGS:
                if not self.ok(shape, RUNNER_BASELINE, tag):
                    continue
                for policy in self.policies(shape):
                    if policy == RUNNER_BASELINE or not self.ok(shape, policy, tag):
                        continue
                    v, nv = self.median_of(shape, policy, tag, "items_per_second")
                    b, nb = self.median_of(shape, RUNNER_BASELINE, tag, "items_per_second")
                    cv, _ = self.median_of(shape, policy, tag, "cpu_s_per_Mitem")
                    cb, _ = self.median_of(shape, RUNNER_BASELINE, tag, "cpu_s_per_Mitem")
                    contended = "" if self.quiet_only(shape, tag) else " (contended incl.)"
                    out.append(
                        f"| {shape} | {tag}{contended} | {policy} | {nv} / {nb} | {fmt_rate(v)} "
                        f"| {fmt_rate(b)} | "
                        f"{self.ratio_cells(shape, policy, tag, 'items_per_second')} | "
                        f"{fmt(cv)} | {fmt(cb)} | "
                        f"{self.ratio_cells(shape, policy, tag, 'cpu_s_per_Mitem')} |")
        return out if len(out) > 2 else []

    def table(self, shape, tag):
        out = ["| policy | pinned | runs | items/s (median) | spread | CPU s / M items "
               "| busy CPUs | vol. cs / M items | invol. cs / M items | stop, ms "
               "| RTT ns (before / after) | others' CPU |",
               "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for policy in self.policies(shape):
            rs = self.pool(shape, policy, tag) if tag in TAGS else self.ok(shape, policy, tag)
            if not rs:
                continue
            ips = [r["items_per_second"] for r in rs]
            m = med(ips)
            spread = f"{100 * (max(ips) - min(ips)) / m:.0f}%" if m else "-"
            col = lambda key: med([r[key] for r in rs if key in r])
            per_m = lambda key: med([r[key] / (r["items"] / 1e6) for r in rs if key in r])
            pinned = "yes" if col("pinned") else "no"
            few = "" if len(rs) >= MIN_RUNS else " (few)"
            out.append(f"| {policy} | {pinned} | {len(rs)}{few} | {fmt_rate(m)} | {spread} | "
                       f"{fmt(col('cpu_s_per_Mitem'))} | {fixed2(col('cpu_util'))} | "
                       f"{fmt(per_m('vol_cs'))} | {fmt(per_m('invol_cs'))} | "
                       f"{fmt(col('stop_ms'), 2)} | {fmt(col('rtt_before_ns'))} / "
                       f"{fmt(col('rtt_after_ns'))} | {pct(col('others_cpu_frac'))} |")
        return out

    def failures(self, shape):
        out = []
        for r in self.runs:
            if r["shape"] == shape and r["error"]:
                out.append(f"- {r['policy']}, rep {r['rep']}: {r['error']}")
        return out

    def render(self):
        ctx = self.ctx
        plans = parse_pairs(ctx.get("conveyor_runner_plans"))
        skipped = parse_pairs(ctx.get("conveyor_runner_skipped"))
        L = []
        L.append(f"Generated from `{self.json_path}` (`bench/runner_bench.cc`). "
                 f"Reproduce: `{ctx.get('conveyor_run_command') or RUNNER_REPRODUCE}` "
                 "(`RUNNERS_ONLY=1` reruns only runner_bench and regenerates this file from the "
                 "existing queue_bench JSON).")
        L.append("")
        L.append("What runs: a Session with this machine's topology and a placement plan "
                 "(`make_plan`, 1 queue) makes one `FifoQueue<std::uint64_t>` (capacity "
                 f"{ctx.get('conveyor_capacity', '?')}; its ring placed by the plan); P enqueue "
                 "ops registered with `session.add_op` are run in a loop by QueueRunner threads "
                 "(`create_threads(session, &coord, true)`, which binds enqueue thread i to the "
                 "plan's producer PU i); C plain consumer threads, bound with "
                 "`bind_current_thread` to the plan's consumer PUs, dequeue "
                 f"{ctx.get('conveyor_items', '?')} items in all; then `coord.request_stop()`, "
                 "the close_on_stop thread cancels the queue, and `coord.join()`. Policy "
                 "`none` = no binding (the OS places every thread; ring from the default "
                 "aligned resource); `compact` = bound. The window is the consumers' work, from "
                 "a queue the runners have already filled; every run's consumed values are "
                 "checked (per-producer prefixes by count, sum and sum of squares, per-producer "
                 "order), so a run that loses or duplicates an item fails.")
        L.append("")
        L.append("Interleaving: for rep: for shape: for policy (the policy order rotates each "
                 "rep), so the pinned and unpinned runs of a shape are back to back in one vCPU "
                 "placement; each run is tagged near/far by its own before/after PU 0 <-> PU 1 "
                 "round trip, as above, and ratios compare runs of one tag only. Paired = the "
                 "median over rounds of (pinned run / unpinned run of the same round), both "
                 f"with the same tag; it cancels drift between rounds, so where it and the ratio of "
                 "medians disagree (wide spreads), trust the paired one. A ratio needs >= "
                 f"{RUNNER_MIN_RUNS} runs (pairs) per side; "
                 f"(few) marks < {MIN_RUNS}. Quiet-run filtering as in the queue section.")
        L.append("")
        L.append("Columns: CPU = process CPU time (getrusage, all threads: runners, consumers, "
                 "close_on_stop, main) over the window per million items; busy CPUs = that CPU "
                 "time / wall time (2.0 = both vCPUs busy all along); stop = request_stop() to "
                 "coord.join() returning (cancel, wake, join), outside the window.")
        L.append("")
        if plans:
            L.append("Plans on this machine (thread@PU; `-` = not bound):")
            L.append("")
            for k, v in plans.items():
                L.append(f"- {k}: {v}")
            for k, v in skipped.items():
                L.append(f"- {k}: not run ({v})")
            L.append("")
        L.append("### Pinned / unpinned, per shape and tag")
        L.append("")
        L.append("Ratios are pinned / unpinned: > 1x items/s = pinning is faster; > 1x CPU = "
                 "pinning costs more CPU per item.")
        L.append("")
        L.extend(self.summary_table() or
                 ["No shape has runs of both policies with a near or far tag."])
        L.append("")
        L.append(f"- Runs: {ctx.get('conveyor_reps', '?')} interleaved reps per shape and "
                 f"policy; {ctx.get('conveyor_items', '?')} items per run; placement tags of "
                 f"the successful runs: {self.placement_summary()}.")
        load = ctx.get("load_avg")
        if load:
            L.append(f"- Load average when runner_bench started: "
                     f"{', '.join(f'{x:.2f}' for x in load)} (1, 5, 15 min).")
        L.append(f"- Commit: {ctx.get('conveyor_commit') or commit()}; built by "
                 f"{ctx.get('conveyor_compiler', '?')}, flags "
                 f"`{ctx.get('conveyor_cxx_flags', '?')}`, {ctx.get('conveyor_build', '?')}; "
                 f"date {ctx.get('date', '?')}")
        L.append(f"- runner_bench command: `{ctx.get('conveyor_command', '?')}`")
        L.append("")
        for shape in self.shapes:
            L.append(f"### {shape}: {self.shape_text(shape)}")
            L.append("")
            for tag in self.tags(shape):
                if tag in TAGS:
                    note = (f" (quiet runs only: others' CPU < {pct(QUIET_MAX)})"
                            if self.quiet_only(shape, tag) else " (all runs)")
                else:
                    note = " (excluded from ratios)"
                L.append(f"#### {tag}{note}")
                L.append("")
                L.extend(self.table(shape, tag))
                L.append("")
            fails = self.failures(shape)
            if fails:
                L.append("Runs that failed or were cut:")
                L.append("")
                L.extend(fails)
                L.append("")
        return L

    def placement_summary(self):
        counts = {}
        for r in self.runs:
            if r["error"] is None:
                counts[r["tag"]] = counts.get(r["tag"], 0) + 1
        return ", ".join(f"{n} {t}" for t, n in sorted(counts.items())) or "none"


def runner_section(path):
    L = ["## Queue runners: pinned vs unpinned", ""]
    if not os.path.exists(path):
        L.append(f"Not measured yet: `{path}` does not exist. Produce it with "
                 f"`{RUNNER_REPRODUCE}` (builds runner_bench, runs it, writes `{path}` and its "
                 "console log beside it, and regenerates this file from the existing "
                 "queue_bench JSON).")
        return "\n".join(L) + "\n"
    context, runs = load_runner_runs(path)
    if not runs:
        L.append(f"`{path}` holds no runner_bench runs; rerun `{RUNNER_REPRODUCE}`.")
        return "\n".join(L) + "\n"
    L.extend(RunnerReport(path, context, runs).render())
    return "\n".join(L).rstrip() + "\n"


# ---- shuffle queue (shuffle_bench) ---------------------------------------------------------------

SHUFFLE_NAME_RE = re.compile(
    r"^BM_Shuffle_(?P<shape>[A-Za-z0-9]+)_(?P<variant>[A-Za-z]+)"
    r"/p:(?P<p>\d+)/c:(?P<c>\d+)/rep:(?P<rep>\d+)"
)
SHUFFLE_REPRODUCE = "SHUFFLE_ONLY=1 bench/run_perf.sh"
SHUFFLE_TARGET = 3.0  # Conveyor / TF-style mutex items/s at 2 producers


def load_shuffle_runs(path):
    with open(path) as f:
        data = json.load(f)
    runs = []
    for b in data.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration":
            continue
        m = SHUFFLE_NAME_RE.match(b.get("run_name") or b["name"])
        if not m:
            continue
        run = {"shape": m["shape"], "variant": m["variant"], "rep": int(m["rep"]),
               "p": int(m["p"]), "c": int(m["c"]),
               "error": b.get("error_message") if b.get("error_occurred") else None}
        for key in ("items_per_second", "cpu_s_per_Mitem", "vol_cs", "invol_cs", "items",
                    "rtt_before_ns", "rtt_after_ns", "others_cpu_frac", "shards"):
            if key in b:
                run[key] = float(b[key])
        run["tag"] = tag_of(run.get("rtt_before_ns"), run.get("rtt_after_ns"))
        runs.append(run)
    return data.get("context", {}), runs


def shuffle_section(path):
    L = ["## Shuffle queue vs TF-style mutex shuffle queue", ""]
    if not os.path.exists(path):
        L.append(f"Not measured yet: `{path}` does not exist. Produce it with "
                 f"`{SHUFFLE_REPRODUCE}`.")
        return "\n".join(L) + "\n"
    ctx, runs = load_shuffle_runs(path)
    if not runs:
        L.append(f"`{path}` holds no shuffle_bench runs; rerun `{SHUFFLE_REPRODUCE}`.")
        return "\n".join(L) + "\n"
    conv, base = "Conveyor", "TFMutex"
    L.append(f"Generated from `{path}` (`bench/shuffle_bench.cc`). Reproduce: "
             f"`{ctx.get('conveyor_run_command') or SHUFFLE_REPRODUCE}`.")
    L.append("")
    L.append("What runs: `ShuffleQueue<std::uint64_t>` (default shards) against "
             "`bench/mutex_shuffle.h`, TF's RandomShuffleQueue design (one buffer, one mutex, "
             "two condition variables, index = rand % size, last into the slot); both with "
             f"capacity {ctx.get('conveyor_capacity', '?')} and min_after_dequeue "
             f"{ctx.get('conveyor_min_after_dequeue', '?')}. P unpinned producers enqueue "
             f"{ctx.get('conveyor_items', '?')} items in all, one per call; C consumers "
             "dequeue until closed; the window ends when the drained queue reports closed. "
             "Every run checks per-producer count, sum and sum of squares (nothing lost or "
             "duplicated). Interleaving: for rep: for shape: for variant (order rotated each "
             "rep); runs are tagged near/far by their PU 0 <-> PU 1 round trip as above and "
             "compared within a tag only. Paired = median over rounds of the same-round "
             "Conveyor / mutex ratio.")
    L.append("")
    shapes = []
    for r in runs:
        if r["shape"] not in shapes:
            shapes.append(r["shape"])

    def ok(shape, variant, tag):
        return [r for r in runs if r["shape"] == shape and r["variant"] == variant
                and r["error"] is None and r["tag"] == tag]

    L.append("| shape | tag | runs (Conveyor / mutex) | items/s Conveyor | items/s mutex | "
             "ratio of medians | paired ratio (pairs) | CPU s / M items Conveyor | "
             "CPU s / M items mutex |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    target_lines = []
    for shape in shapes:
        for tag in ("near", "far", "mixed", "unknown"):
            a, b = ok(shape, conv, tag), ok(shape, base, tag)
            if not a and not b:
                continue
            ma = med([r["items_per_second"] for r in a])
            mb = med([r["items_per_second"] for r in b])
            ca = med([r["cpu_s_per_Mitem"] for r in a])
            cb = med([r["cpu_s_per_Mitem"] for r in b])
            ratio = f"**{ma / mb:.2f}x**" if ma and mb else "-"
            if ratio != "-" and min(len(a), len(b)) < MIN_RUNS:
                ratio += " (few)"
            bb = {r["rep"]: r for r in b}
            pairs = [r["items_per_second"] / bb[r["rep"]]["items_per_second"]
                     for r in a if r["rep"] in bb]
            pr = med(pairs)
            paired = f"{pr:.2f}x ({len(pairs)})" if pr is not None else "- (0)"
            excl = "" if tag in TAGS else " (excluded)"
            L.append(f"| {shape} | {tag}{excl} | {len(a)} / {len(b)} | {fmt_rate(ma)} | "
                     f"{fmt_rate(mb)} | {ratio} | {paired} | {fmt(ca)} | {fmt(cb)} |")
            if tag in TAGS and a and a[0]["p"] == 2 and pr is not None:
                verdict = "met" if pr >= SHUFFLE_TARGET else "NOT met"
                target_lines.append(f"- {shape}, {tag}: paired {pr:.2f}x vs target >= "
                                    f"{SHUFFLE_TARGET:.0f}x: **{verdict}** ({len(pairs)} pairs)")
    L.append("")
    L.append("Target (2 producers, Conveyor >= 3x the mutex queue's items/s, paired ratio):")
    L.append("")
    L.extend(target_lines or ["- no 2-producer shape has near or far runs of both variants"])
    L.append("")
    shards = med([r["shards"] for r in runs if "shards" in r and r["variant"] == conv])
    L.append(f"- ShuffleQueue shards: {fmt(shards)}; {ctx.get('conveyor_reps', '?')} "
             f"interleaved reps; {ctx.get('conveyor_pus', '?')} PUs.")
    L.append(f"- Commit: {ctx.get('conveyor_commit') or commit()}; built by "
             f"{ctx.get('conveyor_compiler', '?')}, flags `{ctx.get('conveyor_cxx_flags', '?')}`, "
             f"{ctx.get('conveyor_build', '?')}; date {ctx.get('date', '?')}")
    load = ctx.get("load_avg")
    if load:
        L.append(f"- Load average when shuffle_bench started: "
                 f"{', '.join(f'{x:.2f}' for x in load)} (1, 5, 15 min).")
    fails = [f"- {r['shape']} {r['variant']} rep {r['rep']}: {r['error']}"
             for r in runs if r["error"]]
    if fails:
        L.append("")
        L.append("Runs that failed or were cut:")
        L.append("")
        L.extend(fails)
    return "\n".join(L).rstrip() + "\n"


INGEST_REPRODUCE = "bench/ingest_perf.sh"


def ingest_section(path):
    L = ["## conveyor ingest (the main job)", ""]
    if not os.path.exists(path):
        L.append(f"Not measured yet: `{path}` does not exist. Produce it with "
                 f"`{INGEST_REPRODUCE}`.")
        return "\n".join(L) + "\n"
    doc = json.load(open(path))
    runs = doc.get("runs", [])
    if not runs:
        L.append(f"`{path}` holds no runs; rerun `{INGEST_REPRODUCE}`.")
        return "\n".join(L) + "\n"
    r0 = runs[0]
    L.append(f"Generated from `{path}`. Reproduce: `{doc.get('command') or INGEST_REPRODUCE}` "
             f"(commit {doc.get('commit', '?')}, load average after the runs "
             f"{doc.get('load_after', '?')}).")
    L.append("")
    L.append(f"What runs: `conveyor ingest` on its default dataset ({r0['files']} TFRecord files), "
             f"{r0['epochs']} epochs, {r0['readers']} reader threads -> `shuffle_batch_join` "
             f"(capacity {r0['capacity']}, min_after_dequeue {r0['min_after_dequeue']}, batch "
             f"{r0['batch_size']}) -> one consumer checking exactly once per epoch. Whole-pipeline "
             f"figures (no peer runs this pipeline); {len(runs)} runs, medians.")
    L.append("")
    def m(key):
        return med([float(r[key]) for r in runs])
    ok = sum(1 for r in runs if r.get("exactly_once"))
    L.append("| records / run | records/s | batches/s | MB/s | producers blocked on full, s | "
             "consumer waiting, s | shuffle fill above min | exactly once |")
    L.append("|---|---|---|---|---|---|---|---|")
    L.append(f"| {int(m('records'))} | {fmt_rate(m('records_per_second'))} | "
             f"{m('batches_per_second'):.0f} | {m('megabytes_per_second'):.0f} | "
             f"{m('producer_blocked_seconds'):.3f} | {m('consumer_wait_seconds'):.3f} | "
             f"{100 * m('queue_fill'):.0f}% | {ok} of {len(runs)} runs |")
    L.append("")
    L.append("Per run, records/s: " + ", ".join(fmt_rate(float(r["records_per_second"]))
                                               for r in runs) + ".")
    return "\n".join(L) + "\n"


TRACE_REPRODUCE = "bench/trace_overhead.sh"
TRACE_TARGET = 0.05  # issue 6: tracing on costs the pipeline under 5%


def trace_section(path):
    """PERF.md's "Tracing overhead" section from bench/trace_overhead.sh's JSON."""
    L = ["## Tracing overhead (engine/trace.h)", ""]
    if not os.path.exists(path):
        L.append(f"Not measured yet: `{path}` does not exist. Produce it with "
                 f"`{TRACE_REPRODUCE}`.")
        return "\n".join(L) + "\n"
    doc = json.load(open(path))
    runs = doc.get("runs", [])
    if not runs:
        L.append(f"`{path}` holds no runs; rerun `{TRACE_REPRODUCE}`.")
        return "\n".join(L) + "\n"
    L.append(f"Generated from `{path}`. Reproduce: `{doc.get('command') or TRACE_REPRODUCE}` "
             f"(commit {doc.get('commit', '?')}, load average {doc.get('load_before', '?')} "
             f"before and {doc.get('load_after', '?')} after the runs).")
    L.append("")
    r0 = runs[0]
    rounds = sorted({r["round"] for r in runs})
    L.append(f"What runs: `conveyor ingest` (the main job, {r0['epochs']} epochs of the default "
             f"dataset, {r0['readers']} readers, {r0['records']} records per run) in three builds "
             f"/ modes, one of each per round, {len(rounds)} rounds, the order rotating per round: "
             f"**out** = built with `-DCONVEYOR_TRACING=OFF` (no trace point compiled in), "
             f"**off** = the default build, tracing off (one predictable branch per trace point), "
             f"**on** = the default build with `--trace FILE` (every event recorded: queue waits, "
             f"park/wake, closes, stops, batches; runner ops cost one clock read each and an "
             f"event only when long, waiting or failed). Medians; ratios are of medians and, "
             f"in brackets, the median of same-round ratios.")
    L.append("")
    by = {c: [float(r["records_per_second"]) for r in runs if r["config"] == c]
          for c in ("out", "off", "on")}
    per_round = {}
    for r in runs:
        per_round.setdefault(r["round"], {})[r["config"]] = float(r["records_per_second"])
    def paired(a, b):
        vals = [v[a] / v[b] for v in per_round.values() if a in v and b in v]
        return med(vals) if vals else float("nan")
    L.append("| configuration | records/s (median) | vs out | runs | exactly once |")
    L.append("|---|---|---|---|---|")
    for c in ("out", "off", "on"):
        ok = sum(1 for r in runs if r["config"] == c and r.get("exactly_once"))
        n = len(by[c])
        ratio = med(by[c]) / med(by["out"]) if by["out"] else float("nan")
        L.append(f"| {c} | {fmt_rate(med(by[c]))} | {ratio:.3f} ({paired(c, 'out'):.3f}) | {n} | "
                 f"{ok} of {n} |")
    L.append("")
    off_out = med(by["off"]) / med(by["out"])
    on_off = med(by["on"]) / med(by["off"])
    L.append(f"- Off vs compiled out: {100 * (1 - off_out):+.1f}% throughput cost (median of "
             f"same-round ratios: {100 * (1 - paired('off', 'out')):+.1f}%). A negative cost "
             f"means the slower-looking configuration ran faster: the difference is noise.")
    met = (1 - on_off) < TRACE_TARGET and (1 - paired("on", "off")) < TRACE_TARGET
    try:
        load = float(str(doc.get("load_before", "")).split()[0])
    except (IndexError, ValueError):
        load = 0.0
    cpus = os.cpu_count() or 1
    if load > cpus:
        L.append(f"- The machine was busy: load average {load:g} on {cpus} CPUs before the runs; "
                 f"the same build ran up to "
                 f"{max(by['out']) / min(by['out']):.1f}x apart between rounds, so timing ratios "
                 f"of a few percent are below the noise (see the deterministic estimate below).")
    L.append(f"- On vs off: {100 * (1 - on_off):+.1f}% throughput cost (same-round: "
             f"{100 * (1 - paired('on', 'off')):+.1f}%). Target under {100 * TRACE_TARGET:.0f}%: "
             f"**{'met' if met else 'NOT met'}**.")
    ipe = doc.get("instructions_per_element")
    if ipe:
        if "out" in ipe:  # a file from before the probe had modes: FifoQueue only
            ipe = {"fifo": ipe}
        parts = [f"{q}: out {c['out']}, off {c['off']}, on {c['on']}" for q, c in ipe.items()]
        L.append(f"- Instructions per element moved on the queues' fast paths (callgrind on "
                 f"bench/hot_path_probe, deterministic; as bench/check_hot_path.sh counts): "
                 f"{'; '.join(parts)}. The fast paths hold no trace point; the points sit where "
                 f"a thread is about to wait.")
    est = doc.get("estimate")
    if est:
        L.append(f"- Deterministic estimate of on vs off (callgrind instruction counts, immune to "
                 f"the machine's load): recording costs {est['instructions_per_event']} "
                 f"instructions per event and {est['instructions_per_op']} per runner op "
                 f"(bench/trace_probe); the last traced run recorded {est['traced_events']} events "
                 f"and {est['traced_ops']} ops for {est['traced_records']} records, i.e. "
                 f"{est['instructions_per_record_traced']:.0f} instructions per record, against "
                 f"{est['instructions_per_record_untraced']:.0f} per record for the untraced "
                 f"pipeline (`conveyor ingest --epochs 1` compiled out, under callgrind): "
                 f"**{100 * est['fraction']:.1f}%** (target under {100 * TRACE_TARGET:.0f}%: "
                 f"{'met' if est['fraction'] < TRACE_TARGET else 'NOT met'}). Instructions are "
                 f"not time: the clock read (rdtsc, one instruction) takes about 18 ns on this VM.")
    if est and "ingest_instructions_off" in est:
        a, b = est["ingest_instructions_out"], est["ingest_instructions_off"]
        L.append(f"- Deterministic off vs compiled out: `conveyor ingest --epochs 1` "
                 f"({est['ingest_records']} records) under callgrind, the fewest of 2 runs each: "
                 f"{a / 1e6:.1f} M instructions compiled out, {b / 1e6:.1f} M off "
                 f"(**{100 * (b - a) / a:+.2f}%**; spinning under valgrind varies by about as "
                 f"much).")
    if doc.get("traced_run"):
        L.append(f"- The last traced run: `{doc['traced_run'].strip()}`")
    L.append("")
    L.append("Per round, records/s (out / off / on): " + "; ".join(
        " / ".join(fmt_rate(per_round[k][c]) for c in ("out", "off", "on") if c in per_round[k])
        for k in sorted(per_round)) + ".")
    return "\n".join(L) + "\n"


JETSTREAM_REPRODUCE = "bench/jetstream_perf.sh"
JETSTREAM_DEFAULT = "bench/results/jetstream.json"
JETSTREAM_TEXT = {
    "plain_pull": "NATS C client's plain pull loop (fetch 256, ack each), one thread",
    "conveyor_1lane": "Conveyor: Source (1 lane) -> ShuffleQueue -> batches of 128, acked",
    "conveyor_2lanes": "Conveyor: Source (2 lanes) -> ShuffleQueue -> batches of 128, acked",
}


def jetstream_section(path):
    """Section 'NATS JetStream source' from bench/jetstream_bench.cc's JSON."""
    L = ["## NATS JetStream source: Conveyor pipeline vs the client's plain pull loop", ""]
    if not os.path.exists(path):
        L.append(f"Not measured yet: `{path}` does not exist. Produce it with "
                 f"`{JETSTREAM_REPRODUCE}`.")
        return "\n".join(L) + "\n"
    doc = json.load(open(path))
    ctx = doc.get("context", {})
    runs = [r for r in doc.get("runs", []) if r.get("checksum_ok")]
    bad = len(doc.get("runs", [])) - len(runs)
    L.append(f"Generated from `{path}`. Reproduce: `{doc.get('command') or JETSTREAM_REPRODUCE}` "
             f"(commit {doc.get('commit', '?')}; binary: `{ctx.get('command', '?')}`; NATS C client "
             f"{ctx.get('nats_client', '?')}; load average after the runs "
             f"{ctx.get('loadavg_after', '?')}).")
    L.append("")
    L.append(f"What runs: one nats-server (JetStream, memory stream) on this host holding "
             f"{ctx.get('messages', '?')} messages of {ctx.get('size', '?')} bytes; each run "
             f"consumes all of them through a fresh durable pull consumer with explicit acks, "
             f"from the first fetch to the last ack flushed to the server. Variants run "
             f"interleaved (order rotating per repetition); every run's checksum (count and sum "
             f"of stream sequences) is verified. Medians over {ctx.get('reps', '?')} repetitions."
             + (f" {bad} run(s) failed the checksum and are left out." if bad else ""))
    L.append("")
    variants = [v for v in JETSTREAM_TEXT if any(r["variant"] == v for r in runs)]
    by = {v: [r for r in runs if r["variant"] == v] for v in variants}
    L.append("| variant | messages/s (median) | CPU s per run (median) | runs |")
    L.append("|---|---|---|---|")
    for v in variants:
        rs = by[v]
        L.append(f"| {JETSTREAM_TEXT[v]} | {fmt_rate(med([r['messages_per_second'] for r in rs]))} "
                 f"| {med([r['cpu_seconds'] for r in rs]):.3f} | {len(rs)} |")
    L.append("")
    if "plain_pull" in by:
        base = {r["rep"]: r["messages_per_second"] for r in by["plain_pull"]}
        for v in variants:
            if v == "plain_pull":
                continue
            paired = [r["messages_per_second"] / base[r["rep"]] for r in by[v] if r["rep"] in base]
            ratio = med([r["messages_per_second"] for r in by[v]]) / med(list(base.values()))
            L.append(f"- {v} / plain_pull: {ratio:.2f}x (ratio of medians); "
                     f"{med(paired):.2f}x (median of same-repetition ratios, {len(paired)} pairs).")
        L.append("")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", help="queue_bench --benchmark_out JSON")
    ap.add_argument("--command", default="", help="the command that produced the JSON")
    ap.add_argument("--runners", default=None,
                    help="runner_bench JSON: adds the section 'Queue runners: pinned vs "
                         "unpinned' (says how to produce the file if it does not exist)")
    ap.add_argument("--shuffle", default=None,
                    help="shuffle_bench JSON: adds the section 'Shuffle queue vs TF-style mutex "
                         "shuffle queue' (says how to produce the file if it does not exist)")
    ap.add_argument("--ingest", default=None,
                    help="bench/ingest_perf.sh's JSON: adds the section 'conveyor ingest'")
    ap.add_argument("--perf", default=None,
                    help="conveyor perf --json output: its section (bench/perf_report.py) leads")
    ap.add_argument("--perf-placements", default=None,
                    help="conveyor perf --json of spsc_pinned and bulk alone, many reps "
                         "(PLACEMENTS_ONLY=1 bench/run_perf.sh): the perf section's '1P1C targets "
                         "in both placements' (with --perf; skipped if the file does not exist)")
    ap.add_argument("--perf-plots", default="docs/perf",
                    help="where the perf section's PNG plots are written (with --perf)")
    ap.add_argument("--trace", default=None,
                    help="bench/trace_overhead.sh's JSON: adds the section 'Tracing overhead'")
    ap.add_argument("--jetstream", default=None,
                    help="bench/jetstream_perf.sh's JSON: adds the section 'NATS JetStream "
                         f"source' (default: {JETSTREAM_DEFAULT} when it exists)")
    args = ap.parse_args()
    context, runs = load_runs(args.json)
    if not runs:
        sys.exit(f"make_perf.py: no queue_bench runs in {args.json}")
    out = Report(args.json, context, runs, args.command).render()
    if args.perf is not None and os.path.exists(args.perf):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import perf_report  # bench/perf_report.py
        placements = args.perf_placements
        if placements is not None and not os.path.exists(placements):
            placements = None
        section = perf_report.render(args.perf, args.perf_plots, args.perf_plots, placements)
        first = out.find("\n## ")  # after the title and its "Generated by" line
        out = out[:first + 1] + section + out[first:] if first >= 0 else section + out
    if args.runners is not None:
        out += "\n" + runner_section(args.runners)
    if args.shuffle is not None:
        out += "\n" + shuffle_section(args.shuffle)
    if args.ingest is not None:
        out += "\n" + ingest_section(args.ingest)
    if args.trace is not None:
        out += "\n" + trace_section(args.trace)
    jetstream = args.jetstream
    if jetstream is None and os.path.exists(JETSTREAM_DEFAULT):
        jetstream = JETSTREAM_DEFAULT  # kept when another script regenerates PERF.md
    if jetstream is not None:
        out += "\n" + jetstream_section(jetstream)
    sys.stdout.write(out)


if __name__ == "__main__":
    main()
