#!/usr/bin/env python3
"""PERF.md's lead section from a `conveyor perf --json` document, and its plots.

Usage: python3 bench/perf_report.py bench/results/perf.json [--plots docs/perf] > section.md
       (bench/make_perf.py --perf FILE puts this section first in PERF.md)

What it computes (tools/perf.h explains the measurements):
  - Records with status ok only; each is tagged near / far / mixed by its PU 0 <-> PU 1 round
    trip before and after. Ratios compare medians of ONE tag (near with near, far with far);
    mixed and unknown records are excluded from ratios.
  - Other work on the machine (others_cpu_frac: the machine's busy time minus the worker's, over
    the window) changes which queues win (spinning queues gain when the other core is taken);
    where every queue of a configuration and tag has >= MIN_RUNS quiet records (others <
    QUIET_MAX), only those are used, else all are and the tables say "contended".
  - Per scenario and configuration: the best Conveyor variant's median over the best peer's.
  - The issue's targets, like with like: SPSC pinned >= 1.5x the best peer; oversubscribed 4P4C
    (4 producers and 4 consumers per 2 cores, unpinned) >= 3x the best BOUNDED BLOCKING peer
    (every queue holds 1024, each blocking peer waits in its own blocking call), with CPU
    seconds per million items at most half that peer's; batch 32 >= 1.2x boost spsc_queue bulk.
    Each also as the median of same-rep paired ratios (the two ran back to back).
  - Tracing overhead (the trace scenario, issue 6): the pipeline's job with tracing compiled
    out, compiled in but off, and on, interleaved per rep in fresh processes; off vs compiled
    out and on vs off as ratios of medians and medians of same-rep ratios, against the target
    (on costs under 5% against off).
  - Plots (gnuplot, PNG): throughput vs threads per scenario, one line per queue; pingpong
    latency percentiles; CPU per item vs threads; element size GB/s against memcpy; bulk batch.
Standard library only (and the gnuplot program for the plots).
"""

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

TAGS = ("near", "far")
MIN_RUNS = 3  # medians need at least this many records of a tag (quick runs have 3 reps)
QUIET_MAX = 0.10  # a record is quiet when other work took less than this share of the CPUs


def med(values):
    return statistics.median(values) if values else None


def is_conveyor(queue):
    return queue.startswith("Conveyor")


def fmt_rate(v):
    if v is None:
        return "-"
    if v >= 1e9:
        return f"{v / 1e9:.2f} G/s"
    if v >= 1e6:
        return f"{v / 1e6:.2f} M/s"
    return f"{v / 1e3:.1f} k/s"


def fmt(v, digits=3):
    if v is None:
        return "-"
    return f"{v:.{digits}g}"


def config_key(r):
    return (r["scenario"], r["producers"], r["consumers"], r["batch"], r["placement"],
            r["element_bytes"])


def config_text(key, cores):
    scenario, p, c, batch, placement, size = key
    if scenario == "element_size":
        return f"{size} B payloads, 1P1C pinned"
    if scenario == "bulk":
        return f"batch {batch}, 1P1C pinned"
    if scenario == "pipeline":
        return f"conveyor ingest, default dataset, 1 epoch, {p} readers"
    if scenario == "trace":
        return f"conveyor ingest, default dataset, {p} readers, tracing compiled out / off / on"
    text = f"{p}P{c}C, placement {placement}"
    if cores and p + c > cores:
        text += f" ({(p + c) / cores:g}x the {cores} cores)"
    return text


class Data:
    def __init__(self, doc):
        self.header = doc.get("header", {})
        self.records = doc.get("records", [])
        self.ok = [r for r in self.records if r.get("status") == "ok" and r.get("checksum_ok")]
        self.cores = self.header.get("machine", {}).get("cores", 0)
        self.order = []
        for r in self.records:
            k = config_key(r)
            if k not in self.order:
                self.order.append(k)

    def all_runs(self, key, queue, tag):
        return [r for r in self.ok
                if config_key(r) == key and r["queue"] == queue and r.get("tag") == tag]

    def quiet_only(self, key, tag):
        qs = [q for q in self.queues(key) if self.all_runs(key, q, tag)]
        return bool(qs) and all(
            sum(1 for r in self.all_runs(key, q, tag) if r.get("others_cpu_frac", 0) < QUIET_MAX)
            >= MIN_RUNS for q in qs)

    def runs(self, key, queue, tag):
        rs = self.all_runs(key, queue, tag)
        if self.quiet_only(key, tag):
            rs = [r for r in rs if r.get("others_cpu_frac", 0) < QUIET_MAX]
        return rs

    def queues(self, key):
        seen = []
        for r in self.ok:
            if config_key(r) == key and r["queue"] not in seen:
                seen.append(r["queue"])
        return seen

    def kind(self, queue):
        for r in self.records:
            if r["queue"] == queue:
                return r.get("wait", "?"), r.get("bound", "?")
        return "?", "?"

    def value(self, key, queue, tag, field="items_per_second"):
        rs = self.runs(key, queue, tag)
        if len(rs) < MIN_RUNS:
            return None
        vals = [r[field] for r in rs if r.get(field) is not None]
        return med(vals)

    def cpu(self, key, queue, tag):
        return self.value(key, queue, tag, "cpu_s_per_mitem")

    def paired(self, key, a, b, tag, field="items_per_second"):
        """Median over reps of a/b where both ran in that rep with this tag."""
        ra = {r["rep"]: r[field] for r in self.runs(key, a, tag)}
        rb = {r["rep"]: r[field] for r in self.runs(key, b, tag)}
        ratios = [ra[k] / rb[k] for k in ra if k in rb and rb[k]]
        return (med(ratios), len(ratios)) if ratios else (None, 0)


def best(data, key, tag, pick, lower_is_better=False, field="items_per_second"):
    cands = []
    for q in data.queues(key):
        if not pick(q):
            continue
        v = data.value(key, q, tag, field)
        if v is not None and v > 0:
            cands.append((v, q))
    if not cands:
        return None, None
    v, q = (min if lower_is_better else max)(cands)
    return q, v


def bounded_blocking_peer(data, q):
    wait, bound = data.kind(q)
    return not is_conveyor(q) and wait == "block" and bound == "bounded"


def ratio_lines(data):
    L = []
    for key in data.order:
        scenario = key[0]
        if scenario == "trace":
            continue  # Conveyor against itself: its own subsection (trace_overhead)
        latency = scenario == "pingpong"
        field = "p50_ns" if latency else "items_per_second"
        for tag in TAGS:
            cq, cv = best(data, key, tag, is_conveyor, latency, field)
            pq, pv = best(data, key, tag, lambda q: not is_conveyor(q), latency, field)
            if cq is None:
                continue
            name = f"**{scenario}**, {config_text(key, data.cores)} [{tag}]"
            if pq is None:
                L.append(f"- {name}: {cq} {fmt_rate(cv) if not latency else f'{cv:.0f} ns'} "
                         f"(no peer runs this scenario)")
                continue
            if latency:
                r = pv / cv
                L.append(f"- {name}: p50 round trip, best peer {pq} {pv:.0f} ns / {cq} "
                         f"{cv:.0f} ns = **{r:.2f}x** (above 1: Conveyor faster)")
            else:
                r = cv / pv
                extra = ""
                bq, bv = best(data, key, tag, lambda q: bounded_blocking_peer(data, q))
                if bq is not None and bq != pq:
                    extra = f"; vs best bounded blocking peer {bq} ({fmt_rate(bv)}): **{cv / bv:.2f}x**"
                L.append(f"- {name}: {cq} {fmt_rate(cv)} / best peer {pq} {fmt_rate(pv)} = "
                         f"**{r:.2f}x**{extra}")
    return L


def targets(data):
    """(target, tag, measured, verdict) rows."""
    rows = []
    cores = data.cores or 2
    keys = data.order

    def find(pred):
        return [k for k in keys if pred(k)]

    for key in find(lambda k: k[0] == "spsc_pinned"):
        for tag in TAGS:
            cq, cv = best(data, key, tag, is_conveyor)
            pq, pv = best(data, key, tag, lambda q: not is_conveyor(q))
            if cq and pq:
                pr, n = data.paired(key, cq, pq, tag)
                paired = f"; paired {pr:.2f}x over {n} reps" if pr else ""
                rows.append(("SPSC pinned: best Conveyor >= 1.5x best peer", tag,
                             f"{cq} {fmt_rate(cv)} / {pq} {fmt_rate(pv)} = {cv / pv:.2f}x{paired}",
                             "pass" if cv / pv >= 1.5 else "FAIL"))
    for key in find(lambda k: k[0] == "oversub" and k[1] == 2 * cores and k[4] == "none"):
        for tag in TAGS:
            cv = data.value(key, "Conveyor", tag)
            bq, bv = best(data, key, tag, lambda q: bounded_blocking_peer(data, q))
            if cv is None or bq is None:
                continue
            ccpu, bcpu = data.cpu(key, "Conveyor", tag), data.cpu(key, bq, tag)
            pr, n = data.paired(key, "Conveyor", bq, tag)
            paired = f"; paired {pr:.2f}x over {n} reps" if pr else ""
            rows.append((f"oversubscribed {key[1]}P{key[2]}C: Conveyor >= 3x best bounded "
                         "blocking peer", tag,
                         f"Conveyor {fmt_rate(cv)} / {bq} {fmt_rate(bv)} = {cv / bv:.2f}x{paired}",
                         "pass" if cv / bv >= 3 else "FAIL"))
            if ccpu and bcpu:
                rows.append((f"oversubscribed {key[1]}P{key[2]}C: Conveyor CPU s/M items <= 0.5x "
                             "the best bounded blocking peer's", tag,
                             f"Conveyor {ccpu:.3f} / {bq} {bcpu:.3f} = {ccpu / bcpu:.2f}x",
                             "pass" if ccpu / bcpu <= 0.5 else "FAIL"))
            pq, pv = best(data, key, tag, lambda q: not is_conveyor(q))
            if pq and pq != bq:
                rows.append(("(context, not a target) same, against every peer incl. spinning "
                             "and unbounded", tag,
                             f"Conveyor {fmt_rate(cv)} / {pq} {fmt_rate(pv)} = {cv / pv:.2f}x", "-"))
    for key in find(lambda k: k[0] == "bulk" and k[3] == 32):
        for tag in TAGS:
            cq, cv = best(data, key, tag, is_conveyor)
            bv = data.value(key, "BoostSpsc", tag)
            if cq and bv:
                pr, n = data.paired(key, cq, "BoostSpsc", tag)
                paired = f"; paired {pr:.2f}x over {n} reps" if pr else ""
                rows.append(("batch 32: best Conveyor >= 1.2x boost spsc_queue bulk", tag,
                             f"{cq} {fmt_rate(cv)} / BoostSpsc {fmt_rate(bv)} = {cv / bv:.2f}x"
                             f"{paired}", "pass" if cv / bv >= 1.2 else "FAIL"))
    return rows


TRACE_QUEUES = (("ConveyorIngestNoTrace", "compiled out"), ("ConveyorIngest", "off"),
                ("ConveyorIngestTraced", "on"))
TRACE_TARGET = 0.05  # issue 6: on costs under 5% against off on the pipeline scenario


def trace_overhead(data, reproduce):
    """The 'Tracing overhead' subsection's lines (empty without trace records)."""
    keys = [k for k in data.order if k[0] == "trace"]
    if not keys:
        return []
    key = keys[0]
    names = [q for q, _ in TRACE_QUEUES]
    L = ["### Tracing overhead (the trace scenario, issue 6)", ""]
    # Like with like: the tag where every variant has >= MIN_RUNS records (the one with the most
    # records), else every record whatever its tag (said so).
    present = [q for q in names if any(r["queue"] == q for r in data.ok if config_key(r) == key)]
    basis = None
    for tag in TAGS:
        if present and all(len(data.runs(key, q, tag)) >= MIN_RUNS for q in present):
            n = sum(len(data.runs(key, q, tag)) for q in present)
            if basis is None or n > basis[1]:
                basis = (tag, n)
    if basis is not None:
        tag = basis[0]
        runs = {q: data.runs(key, q, tag) for q in present}
        basis_text = (f"records tagged {tag} "
                      f"({'quiet only' if data.quiet_only(key, tag) else 'contended ones included'})")
    else:
        tag = None
        runs = {q: [r for r in data.ok if config_key(r) == key and r["queue"] == q]
                for q in present}
        basis_text = ("every ok record whatever its tag (no tag has >= "
                      f"{MIN_RUNS} records of each variant)")
    L.append("What runs: the pipeline scenario's job (`conveyor ingest`, default dataset, "
             f"{key[1]} readers, one untimed warm-up epoch, then "
             f"{max((r['items'] for rs in runs.values() for r in rs), default=0)} records) three "
             "ways, each rep running the three back to back in fresh processes, order rotating "
             "per rep: **compiled out** = ConveyorIngestNoTrace in conveyor-perf-worker-notrace "
             "(built with CONVEYOR_TRACING=0: no trace point, no USDT probe), **off** = "
             "ConveyorIngest (the default build, tracing off: one predictable branch per trace "
             "point), **on** = ConveyorIngestTraced (recording as `conveyor ingest --trace FILE` "
             "does, into a temporary file deleted after; each thread's ring holds 2^19 events "
             "and, once full, overwrites its oldest, counted: recording costs the same). Every "
             "run's exactly-once check "
             f"holds (else it is not ok and listed below). Basis: {basis_text}.")
    L.append("")
    L.append("| variant | tracing | runs | records/s (median) | spread | CPU s / M records | "
             "events recorded (median) | of which overwritten (median) |")
    L.append("|---|---|---|---|---|---|---|---|")
    medians = {}
    for q, what in TRACE_QUEUES:
        rs = runs.get(q, [])
        if not rs:
            L.append(f"| {q} | {what} | 0 | - | - | - | - | - |")
            continue
        ips = [r["items_per_second"] for r in rs]
        medians[q] = med(ips)
        ev = [r["trace_events"] + (r.get("trace_dropped") or 0) for r in rs
              if r.get("trace_events") is not None]
        dr = [r["trace_dropped"] for r in rs if r.get("trace_dropped") is not None]
        cpu = med([r["cpu_s_per_mitem"] for r in rs if r.get("cpu_s_per_mitem") is not None])
        L.append(f"| {q} | {what} | {len(rs)} | {fmt_rate(medians[q])} | "
                 f"{100 * (max(ips) - min(ips)) / medians[q]:.0f}% | {fmt(cpu)} | "
                 f"{f'{med(ev):.0f}' if ev else '-'} | {f'{med(dr):.0f}' if dr else '-'} |")
    L.append("")

    def paired(a, b):
        ra = {r["rep"]: r for r in runs.get(a, [])}
        rb = {r["rep"]: r for r in runs.get(b, [])}
        ratios = [ra[k]["items_per_second"] / rb[k]["items_per_second"] for k in ra
                  if k in rb and rb[k]["items_per_second"] and ra[k].get("tag") == rb[k].get("tag")]
        return (med(ratios), len(ratios)) if ratios else (None, 0)

    verdicts = {}
    for (a, b, what) in ((names[1], names[0], "Off vs compiled out"),
                         (names[2], names[1], "On vs off")):
        if a not in medians or b not in medians:
            L.append(f"- {what}: not measured ({a if a not in medians else b} has no ok record"
                     + ("; conveyor-perf-worker-notrace is built in release builds with tracing "
                        "on, not under sanitizers" if b == names[0] else "") + ").")
            continue
        ratio = medians[a] / medians[b]
        pr, n = paired(a, b)
        costs = [1 - ratio] + ([1 - pr] if pr is not None else [])
        verdicts[what] = costs
        L.append(f"- {what}: {100 * (1 - ratio):+.1f}% throughput cost (ratio of medians "
                 f"{ratio:.3f})" + (f"; median of same-rep ratios {pr:.3f} "
                                    f"({100 * (1 - pr):+.1f}%) over {n} reps" if pr else "")
                 + ".")
    if verdicts:
        L.append("- A negative cost means the variant with more tracing ran faster: noise of "
                 "that size hides any difference.")
    if "On vs off" in verdicts:
        ok = all(c < TRACE_TARGET for c in verdicts["On vs off"])
        L.append(f"- **Target: tracing on costs under {100 * TRACE_TARGET:.0f}% against off on the "
                 f"pipeline scenario (ratio of medians and same-rep): "
                 f"{'pass' if ok else 'FAIL'}**.")
    others = [r.get("others_cpu_frac", 0) for rs in runs.values() for r in rs]
    if others:
        L.append(f"- Other work took a median {100 * med(others):.0f}% (max "
                 f"{100 * max(others):.0f}%) of the CPUs during these runs.")
    L.append(f"- Per rep, records/s (compiled out / off / on): " + "; ".join(
        f"rep {k}: " + " / ".join(
            next((fmt_rate(r["items_per_second"]) + ("" if tag else f" {r.get('tag')}")
                  for r in runs.get(q, []) if r["rep"] == k), "-") for q in names)
        for k in sorted({r["rep"] for rs in runs.values() for r in rs})) + ".")
    L.append(f"- Command: `{reproduce}` (the whole run; this subsection comes from its trace "
             "records). Alone: `conveyor perf --scenarios trace --reps 5 --placement none` prints "
             "the same ratios (every tag pooled). bench/trace_overhead.sh (its section below) "
             "adds deterministic instruction counts.")
    L.append("")
    return L


def scenario_tables(data, memcpy):
    L = []
    for key in data.order:
        scenario = key[0]
        L.append(f"#### {scenario}: {config_text(key, data.cores)}")
        L.append("")
        any_rows = False
        for tag in ("near", "far", "mixed", "unknown"):
            qs = [q for q in data.queues(key) if data.runs(key, q, tag)]
            if not qs:
                continue
            any_rows = True
            L.append(f"{tag} ({'quiet records only' if data.quiet_only(key, tag) else 'contended: other work took >= 10% of the CPUs in some records, all used'}):")
            L.append("")
            if scenario == "pingpong":
                L.append("| queue | waits | runs | p50 ns | p99 ns | p99.9 ns | CPU s / M round "
                         "trips | vol. cs / M | invol. cs / M | peak RSS MiB |")
                L.append("|---|---|---|---|---|---|---|---|---|---|")
            elif scenario == "element_size":
                L.append("| queue | waits | runs | items/s | GB/s | of memcpy | CPU s / M items | "
                         "peak RSS MiB |")
                L.append("|---|---|---|---|---|---|---|---|")
            else:
                L.append("| queue | waits / bound | runs | items/s (median) | spread | CPU s / M "
                         "items | vol. cs / M | invol. cs / M | peak RSS MiB | RTT ns | others' CPU |")
                L.append("|---|---|---|---|---|---|---|---|---|---|---|")
            rows = []
            for q in qs:
                rs = data.runs(key, q, tag)
                ips = [r["items_per_second"] for r in rs]
                m = med(ips)
                per_m = lambda f: med([r[f] / (r["items"] / 1e6) for r in rs if r["items"]])
                cpu = med([r["cpu_s_per_mitem"] for r in rs if r.get("cpu_s_per_mitem") is not None])
                rss = med([r.get("peak_rss_kb", 0) / 1024 for r in rs])
                wait, bound = data.kind(q)
                name = f"**{q}**" if is_conveyor(q) else q
                few = "" if len(rs) >= MIN_RUNS else " (few)"
                if scenario == "pingpong":
                    p = lambda f: med([r[f] for r in rs if r.get(f) is not None])
                    rows.append((p("p50_ns"), f"| {name} | {wait} | {len(rs)}{few} | "
                                 f"{p('p50_ns'):.0f} | {p('p99_ns'):.0f} | {p('p999_ns'):.0f} | "
                                 f"{fmt(cpu)} | {fmt(per_m('voluntary_cs'))} | "
                                 f"{fmt(per_m('involuntary_cs'))} | {rss:.1f} |"))
                elif scenario == "element_size":
                    gbps = m * key[5] / 1e9
                    share = f"{100 * gbps / memcpy:.0f}%" if memcpy else "-"
                    rows.append((-m, f"| {name} | {wait} | {len(rs)}{few} | {fmt_rate(m)} | "
                                 f"{gbps:.2f} | {share} | {fmt(cpu)} | {rss:.1f} |"))
                else:
                    spread = (max(ips) - min(ips)) / m if m else 0
                    rtt = (f"{med([r['rtt_before_ns'] for r in rs]):.0f} / "
                           f"{med([r['rtt_after_ns'] for r in rs]):.0f}")
                    rows.append((-m, f"| {name} | {wait} / {bound} | {len(rs)}{few} | "
                                 f"{fmt_rate(m)} | {100 * spread:.0f}% | {fmt(cpu)} | "
                                 f"{fmt(per_m('voluntary_cs'))} | {fmt(per_m('involuntary_cs'))} "
                                 f"| {rss:.1f} | {rtt} | "
                                 f"{100 * med([r.get('others_cpu_frac', 0) for r in rs]):.0f}% |"))
            L += [row for _, row in sorted(rows, key=lambda x: x[0])]
            L.append("")
        if not any_rows:
            L.append("No successful measurement.")
            L.append("")
        bad = [r for r in data.records if config_key(r) == key and r.get("status") != "ok"]
        if bad:
            L.append("Not ok: " + "; ".join(
                f"{r['queue']} rep {r['rep']}: {r['status']} ({r.get('error', '')})" for r in bad))
            L.append("")
    return L


# ---- plots ----------------------------------------------------------------------------------

def dominant_tag(data, key):
    counts = {t: sum(1 for r in data.ok if config_key(r) == key and r.get("tag") == t) for t in TAGS}
    return max(counts, key=counts.get)


def gnuplot(script, workdir):
    subprocess.run(["gnuplot"], input=script, text=True, cwd=workdir, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def line_plot(data, series, title, xlabel, ylabel, out, logx=False, logy=False, hline=None):
    """series: {name: [(x, y), ...]} -> PNG at `out`."""
    series = {k: sorted(v) for k, v in series.items() if v}
    if not series:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        plots = []
        for i, (name, pts) in enumerate(sorted(series.items())):
            path = os.path.join(tmp, f"s{i}.dat")
            with open(path, "w") as f:
                for x, y in pts:
                    f.write(f"{x} {y}\n")
            width = 3 if is_conveyor(name) else 1
            plots.append(f"'{path}' using 1:2 with linespoints lw {width} title '{name}'")
        if hline:
            plots.append(f"{hline[0]} with lines dt 2 lc rgb 'black' title '{hline[1]}'")
        script = "\n".join([
            "set terminal pngcairo size 900,540 noenhanced font 'sans,10'",
            f"set output '{os.path.abspath(out)}'",
            f"set title '{title}'",
            f"set xlabel '{xlabel}'",
            f"set ylabel '{ylabel}'",
            "set key outside right top",
            "set grid",
            "set logscale x 2" if logx else "",
            "set logscale y" if logy else "",
            "plot " + ", ".join(plots),
        ])
        gnuplot(script, tmp)
    return True


def bar_plot(rows, columns, title, ylabel, out, logy=False):
    """rows: [(label, [v per column])] -> clustered bars."""
    if not rows:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bars.dat")
        with open(path, "w") as f:
            f.write("queue " + " ".join(columns) + "\n")
            for label, vals in rows:
                f.write(label + " " + " ".join(f"{v}" for v in vals) + "\n")
        using = ", ".join(
            (f"'{path}' using {i + 2}:xtic(1) title '{c}'" if i == 0 else
             f"'' using {i + 2} title '{c}'") for i, c in enumerate(columns))
        script = "\n".join([
            "set terminal pngcairo size 900,540 noenhanced font 'sans,10'",
            f"set output '{os.path.abspath(out)}'",
            f"set title '{title}'",
            f"set ylabel '{ylabel}'",
            "set style data histograms",
            "set style histogram clustered gap 1",
            "set style fill solid 0.8 border -1",
            "set xtics rotate by -30",
            "set key outside right top",
            "set grid ytics",
            "set logscale y" if logy else "",
            "plot " + using,
        ])
        gnuplot(script, tmp)
    return True


def make_plots(data, outdir, memcpy):
    """Returns [(title, relative path)]."""
    if shutil.which("gnuplot") is None:
        return None
    os.makedirs(outdir, exist_ok=True)
    made = []

    def vs_threads(scenarios, field, name, title, ylabel, logy):
        series = {}
        for key in data.order:
            if key[0] not in scenarios or key[4] != "none":
                continue
            tag = dominant_tag(data, key)
            for q in data.queues(key):
                v = data.value(key, q, tag, field)
                if v is not None:
                    series.setdefault(q, []).append((key[1], v))
        out = os.path.join(outdir, name)
        if line_plot(data, series, title, "producers = consumers (unpinned)", ylabel, out,
                     logx=True, logy=logy):
            made.append((title, out))

    vs_threads(("mpmc", "oversub"), "items_per_second", "throughput_mpmc.png",
               "mpmc and oversub: throughput vs threads (bounded 1024; medians)", "items/s", True)
    vs_threads(("mpmc", "oversub"), "cpu_s_per_mitem", "cpu_per_item_mpmc.png",
               "mpmc and oversub: CPU seconds per million items vs threads", "CPU s / M items",
               True)
    vs_threads(("shuffle",), "items_per_second", "throughput_shuffle.png",
               "shuffle: ShuffleQueue vs TF-style mutex shuffle queue", "items/s", False)

    # bulk: items/s vs batch
    series = {}
    for key in data.order:
        if key[0] != "bulk":
            continue
        tag = dominant_tag(data, key)
        for q in data.queues(key):
            v = data.value(key, q, tag)
            if v is not None:
                series.setdefault(q, []).append((key[3], v))
    out = os.path.join(outdir, "throughput_bulk.png")
    if line_plot(data, series, "bulk: 1P1C pinned, throughput vs batch size", "batch size",
                 "items/s", out, logx=True, logy=True):
        made.append(("bulk: throughput vs batch size", out))

    # element size: GB/s vs bytes, memcpy as a reference line
    series = {}
    for key in data.order:
        if key[0] != "element_size":
            continue
        tag = dominant_tag(data, key)
        for q in data.queues(key):
            v = data.value(key, q, tag)
            if v is not None:
                series.setdefault(q, []).append((key[5], v * key[5] / 1e9))
    out = os.path.join(outdir, "element_size_gbps.png")
    if line_plot(data, series, "element_size: 1P1C pinned, GB/s vs payload bytes",
                 "payload bytes", "GB/s", out, logx=True, logy=True,
                 hline=(memcpy, f"memcpy {memcpy:.1f} GB/s") if memcpy else None):
        made.append(("element_size: GB/s vs payload size (dashed: memcpy)", out))

    # pingpong latency percentiles
    rows = []
    for key in data.order:
        if key[0] != "pingpong":
            continue
        tag = dominant_tag(data, key)
        for q in data.queues(key):
            vals = [data.value(key, q, tag, f) for f in ("p50_ns", "p99_ns", "p999_ns")]
            if all(v is not None for v in vals):
                rows.append((q, vals))
    rows.sort(key=lambda r: r[1][0])
    out = os.path.join(outdir, "pingpong_latency.png")
    if bar_plot(rows, ["p50", "p99", "p99.9"], "pingpong: round-trip latency, PU 0 <-> PU 1",
                "ns (log)", out, logy=True):
        made.append(("pingpong: round-trip latency percentiles", out))
    return made


# ---- the section ----------------------------------------------------------------------------

def reproduce_command(header, mode, added=("--json",)):
    """The run_perf.sh command that reruns the `conveyor perf` of this header, without the
    flags (each with its value) that run_perf.sh adds itself."""
    args = header.get("command", "").split()[2:]
    kept = []
    i = 0
    while i < len(args):
        if args[i] in added:
            i += 2
            continue
        if not args[i].startswith("--json="):
            kept.append(args[i])
        i += 1
    return f"{mode} bench/run_perf.sh {' '.join(kept)}".rstrip()


PLACEMENT_TARGETS = ("SPSC pinned", "batch 32")


def targets_table(rows):
    """Markdown table lines for (target, tag, measured, verdict) rows."""
    L = ["| target | tag | measured (medians; paired = median of same-rep ratios) | result |",
         "|---|---|---|---|"]
    for t, tag, measured, verdict in rows:
        v = f"**{verdict}**" if verdict != "-" else "-"
        L.append(f"| {t} | {tag} | {measured} | {v} |")
    return L


def render_placements(path):
    """The 1P1C targets from a longer run of spsc_pinned and bulk alone (PLACEMENTS_ONLY=1)."""
    data = Data(json.load(open(path)))
    h = data.header
    L = ["### 1P1C targets in both placements (a longer run of spsc_pinned and bulk)", ""]
    L.append(f"Generated from `{path}`; reproduce with "
             f"`{reproduce_command(h, 'PLACEMENTS_ONLY=1', ('--json', '--scenarios'))}`. Commit {h.get('commit', '?')}; "
             f"{h.get('date', '?')}; load average before / after: "
             f"{h.get('loadavg_before', '?')} / {h.get('loadavg_after', '?')}.")
    L.append("")
    tags = collections.Counter(r.get("tag") for r in data.ok)
    L.append("Why: the host moves the two vCPUs between placements on its own schedule, sometimes "
             "for an hour at a time, so a full run's five reps of a 1P1C configuration may all "
             "land in one tag and leave the other without the 3 runs a median needs. This run "
             "repeats only the 1P1C throughput scenarios (same harness, fresh process per "
             "measurement, peers interleaved, reps spread over the run) long enough to meet "
             "both. Records per tag: " +
             ", ".join(f"{t} {n}" for t, n in sorted(tags.items())) + ".")
    L.append("")
    L += targets_table(r for r in targets(data) if r[0].startswith(PLACEMENT_TARGETS))
    L.append("")
    L += ratio_lines(data)
    return "\n".join(L) + "\n"


def render(path, plots_dir, plots_link_base, placements=None):
    doc = json.load(open(path))
    data = Data(doc)
    h = data.header
    m = h.get("machine", {})
    memcpy = h.get("memcpy_gbps") or 0
    L = ["## conveyor perf: Conveyor / best peer per scenario", ""]
    reproduce = reproduce_command(h, "PERF_ONLY=1")
    L.append(f"Generated from `{path}` (`conveyor perf --json`) by bench/make_perf.py --perf; "
             f"reproduce with `{reproduce}`. "
             f"Command: `{h.get('command', '?')}`.")
    L.append("")
    L.append(f"Machine: {m.get('cpu_model', '?')}, {m.get('cores', '?')} PUs, "
             f"{m.get('numa_nodes', '?')} NUMA node(s), {m.get('kernel', '?')}. Commit "
             f"{h.get('commit', '?')}; compiler {h.get('compiler', '?')} "
             f"({h.get('cxx_flags', '')}); {h.get('date', '?')}. memcpy: "
             f"{memcpy:.1f} GB/s. Queue capacity 1024 for every bounded queue. Load average "
             f"before / after the run: {h.get('loadavg_before', '?')} / "
             f"{h.get('loadavg_after', '?')} (near or above the core count: other work shared "
             f"the cores and the figures are noisy).")
    L.append("")
    others = [r.get("others_cpu_frac", 0) for r in data.ok]
    if others:
        L.append(f"Noise: other work took a median {100 * med(others):.0f}% (max "
                 f"{100 * max(others):.0f}%) of the machine's CPU time during the measured windows; "
                 f"{sum(1 for o in others if o < QUIET_MAX)} of {len(others)} records were quiet "
                 f"(< {100 * QUIET_MAX:.0f}%).")
        L.append("")
    n_bad = len(data.records) - len(data.ok)
    checks = sum(1 for r in data.records if r.get("status") == "checksum")
    L.append(f"{len(data.records)} measurements, one fresh process each, peers interleaved with "
             f"Conveyor per rep; {len(data.ok)} ok with checksum verified, {checks} checksum "
             f"failures, {n_bad - checks} cut, skipped or crashed (listed under their tables). "
             f"Tags: near = PU round trip < {h.get('near_rtt_below_ns', 250):g} ns before and "
             f"after, far = both above; ratios only within one tag, medians of >= {MIN_RUNS} "
             f"runs.")
    L.append("")
    per_run = {sc: sorted({r.get("items") for r in data.records if r.get("scenario") == sc})
               for sc in ("spsc_pinned", "bulk")}
    if any(per_run.values()):
        counts = "; ".join(f"{sc} {', '.join(f'{n:,}' for n in ns)}"
                           for sc, ns in per_run.items() if ns)
        L.append(f"Items per measurement in the 1P1C throughput scenarios: {counts} (every queue "
                 "alike). The defaults were 2,000,000 until 2026-12-07: the fastest queues' runs "
                 "then lasted 2-20 ms, where thread start-up, first touches and one descheduling "
                 "weigh as much as the queue; 10 M (spsc_pinned) and 40 M (bulk) make them last "
                 "about 100 ms. The blocking Conveyor adapters' pop_burst takes up to the batch, at "
                 "least one, like MoodycamelBlocking's wait_dequeue_bulk (what is there, else a "
                 "blocking dequeue of one and a burst of what followed); before 2026-12-07 it asked "
                 "dequeue_many for exactly the batch, into a vector copied out again.")
        L.append("")
    L += ratio_lines(data)
    L.append("")
    L.append("### Targets (the core issue's, like with like)")
    L.append("")
    L += targets_table(targets(data))
    L.append("")
    L.append("Bounded blocking peers: TbbBounded, MutexDeque (the TF-style mutex + condition "
             "variable queue) and MoodycamelBlocking (bounded by its 1024 preallocated slots; "
             "it starves a producer with several producers and is then cut and listed). "
             "Spinning and unbounded peers (XeniumVyukov, BoostQueue, MoodycamelCq, the "
             "*Unbounded stand-ins) never sleep, so they burn the cores an oversubscribed "
             "machine needs or allocate instead of waiting; they are shown for context. An earlier "
             "harness (lost) reported 0.77x for oversubscribed 4P4C where queue_bench measured "
             "9.6x. Two comparisons found while rebuilding it each give a ratio below 1: against "
             "the best peer of any kind (queue_bench's own data: 0.62x against the unbounded, "
             "spinning MoodycamelCqUnbounded, 9.6x against the bounded, blocking MutexDeque), and "
             "short runs on a busy machine with the EventCount before bd278be (200k items: "
             "Conveyor 0.4-0.8 M/s against MutexDeque 2-12 M/s, in queue_bench and in this "
             "harness alike; about 37 M/s after it). The targets here compare like with like: "
             "every queue bounded to 1024, blocking peers in their own blocking calls, one "
             "placement tag, quiet records where there are enough.")
    L.append("")
    if placements:
        L.append(render_placements(placements))
    L += trace_overhead(data, reproduce)
    if plots_dir:
        made = make_plots(data, plots_dir, memcpy)
        if made is None:
            L.append("Plots: gnuplot not found (`apt-get install gnuplot-nox`).")
            L.append("")
        else:
            L.append("### Plots")
            L.append("")
            for title, out in made:
                rel = os.path.join(plots_link_base, os.path.basename(out))
                L.append(f"![{title}]({rel})")
                L.append("")
    L.append("### Tables per scenario")
    L.append("")
    L += scenario_tables(data, memcpy)
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", help="conveyor perf --json output")
    ap.add_argument("--plots", default=None, help="write PNG plots into this folder")
    ap.add_argument("--link-base", default="docs/perf",
                    help="how PERF.md refers to the plots folder")
    args = ap.parse_args()
    sys.stdout.write(render(args.json, args.plots, args.link_base))


if __name__ == "__main__":
    main()
