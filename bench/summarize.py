#!/usr/bin/env python3
"""summarize.py — turns bench/compare's raw samples into the results file.

    summarize.py RAW.tsv META.txt ERRORS.log OUT.json  > OUT.md

RAW.tsv lines: group, case, metric, repetition, value. For every
(group, case, metric) the median, min and max over the repetitions are
computed; the issue's target table is then filled with udsock's ratio to the
raw limit and to each peer, each target marked met or missed.
"""
import json
import statistics
import sys
from collections import OrderedDict

# (group, case) -> (label, "h" if higher is better else "l")
CASES = OrderedDict([
    (("stream", "raw"), ("raw C 64 KiB writes -> raw C (memory -> socket)", "h")),
    (("stream", "rawbig"), ("raw C 256 KiB writes, 4 MiB socket buffers", "h")),
    (("stream", "udsock"), ("udsock connect < file -> udsock listen > /dev/null", "h")),
    (("stream", "nc"), ("nc -N -U < file -> nc -lU > /dev/null", "h")),
    (("stream", "socat"), ("socat -u (defaults, 8 KiB)", "h")),
    (("stream", "socatb"), ("socat -u -b 262144", "h")),
    (("stream", "ncat"), ("ncat --send-only -> ncat --recv-only", "h")),
    (("stream", "lib"), ("udsock bench stream 64 KiB, 2 GiB (library)", "h")),
    (("stream", "rawpair"), ("raw_stream pair 64 KiB (socketpair, timed run)", "h")),
    (("stream", "libpair"), ("udsock bench stream 64 KiB (timed run)", "h")),
    (("relay", "direct"), ("raw -> raw, no relay", "h")),
    (("relay", "rawrw"), ("raw -> raw_relay (epoll, read/write 64 KiB) -> raw", "h")),
    (("relay", "rawsp"), ("raw -> raw_relay -S (splice, 1 MiB pipe) -> raw", "h")),
    (("relay", "udsock"), ("raw -> udsock relay -> raw", "h")),
    (("relay", "udsock_base"), ("raw -> udsock relay (baseline binary) -> raw", "h")),
    (("relay", "socat"), ("raw -> socat fork relay (backlog=128) -> raw", "h")),
    (("relay", "socatb"), ("raw -> socat -b 262144 fork relay -> raw", "h")),
    (("redis", "direct_P1"), ("redis-benchmark -P 1, direct unix socket", "h")),
    (("redis", "udsock_P1"), ("redis-benchmark -P 1, through udsock relay", "h")),
    (("redis", "udsock_base_P1"), ("redis-benchmark -P 1, through udsock relay (baseline)", "h")),
    (("redis", "socat_P1"), ("redis-benchmark -P 1, through socat fork relay", "h")),
    (("redis", "rawrelay_P1"), ("redis-benchmark -P 1, through raw_relay", "h")),
    (("redis", "direct_P16"), ("redis-benchmark -P 16, direct unix socket", "h")),
    (("redis", "udsock_P16"), ("redis-benchmark -P 16, through udsock relay", "h")),
    (("redis", "udsock_base_P16"), ("redis-benchmark -P 16, through udsock relay (baseline)", "h")),
    (("redis", "socat_P16"), ("redis-benchmark -P 16, through socat fork relay", "h")),
    (("redis", "rawrelay_P16"), ("redis-benchmark -P 16, through raw_relay", "h")),
    (("rtt", "raw_same"), ("raw blocking ping-pong, both on CPU 0", "l")),
    (("rtt", "pp_same"), ("udsock bench pingpong, both on CPU 0", "l")),
    (("rtt", "rr_same"), ("udsock bench rr 1x1, both on CPU 0", "l")),
    (("rtt", "raw_cross"), ("raw blocking ping-pong, CPU 0 / CPU 1", "l")),
    (("rtt", "pp_cross"), ("udsock bench pingpong, CPU 0 / CPU 1", "l")),
    (("rtt", "rr_cross"), ("udsock bench rr 1x1, CPU 0 / CPU 1", "l")),
    (("rtt", "raw_busy"), ("raw busy-poll ping-pong, CPU 0 / CPU 1", "l")),
    (("rtt", "pp_spin"), ("udsock bench pingpong --spin, CPU 0 / CPU 1", "l")),
    (("rtt", "rr_spin"), ("udsock bench rr 1x1 --spin, CPU 0 / CPU 1", "l")),
    (("rtt", "raw_adapt"), ("raw spin <= 50 us then block, unpinned", "l")),
    (("rtt", "pp_adapt"), ("udsock bench pingpong --spin 50, unpinned", "l")),
    (("rtt", "zmq"), ("ZeroMQ REQ/REP ipc://, unpinned", "l")),
    (("rtt", "zmq_cpu0"), ("ZeroMQ REQ/REP ipc://, taskset CPU 0", "l")),
    (("rtt", "nng"), ("NNG REQ/REP ipc://, unpinned", "l")),
    (("pipe", "rr16"), ("udsock bench rr 1 connection x 16 in flight", "h")),
    (("pipe", "rr64"), ("udsock bench rr 1 connection x 64 in flight", "h")),
    (("pipe", "rr256"), ("udsock bench rr 1 connection x 256 in flight", "h")),
    (("pipe", "rawdg32"), ("raw datagram pair, sendmmsg/recvmmsg x32", "h")),
    (("pipe", "zmq"), ("ZeroMQ PUSH/PULL ipc:// 64 B", "h")),
    (("pipe", "nng"), ("NNG PUSH/PULL ipc:// 64 B", "h")),
    (("dgram", "raw1"), ("raw datagrams, send/recv", "h")),
    (("dgram", "uds1"), ("udsock bench dgram, send/recv", "h")),
    (("dgram", "raw32"), ("raw datagrams, sendmmsg/recvmmsg x32", "h")),
    (("dgram", "uds32"), ("udsock bench dgram, sendmmsg/recvmmsg x32", "h")),
    (("conn", "raw"), ("raw connect+accept+close", "h")),
    (("conn", "uds"), ("udsock bench connect", "h")),
    (("conn", "rawreq"), ("raw connect + 64 B request/response + close", "h")),
    (("conn", "udsreq"), ("udsock bench connect -s 64", "h")),
    (("conn", "uds_base"), ("udsock bench connect (baseline binary)", "h")),
    (("conn", "udsreq_base"), ("udsock bench connect -s 64 (baseline binary)", "h")),
    (("conn", "relay"), ("connect + 64 B request/response + close through udsock relay", "h")),
    (("conn", "relay_base"), ("the same through the baseline binary's relay", "h")),
    (("conn", "hold"), ("udsock bench hold -c 10000", "l")),
    (("conn", "rr1000"), ("udsock bench rr 1000 clients x 1", "l")),
])
UNITS = {"gbps": "GB/s", "set": "req/s", "get": "req/s", "rps": "req/s", "p50": "µs",
         "p99": "µs", "ops_s": "/s", "held": "conns", "bytes_per_conn": "B/conn"}
BETTER = {"p50": "l", "p99": "l", "bytes_per_conn": "l", "gbps": "h", "set": "h", "get": "h",
          "rps": "h", "ops_s": "h", "held": "h"}


def load(tsv):
    data = OrderedDict()
    for line in open(tsv):
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 5:
            continue
        g, c, m, _r, v = parts
        try:
            x = float(v)
        except ValueError:
            continue
        data.setdefault((g, c, m), []).append(x)
    # redis: the figure of merit is the mean of SET and GET per repetition
    for (g, c, m) in list(data):
        if g == "redis" and m == "set" and (g, c, "get") in data:
            s, gg = data[(g, c, "set")], data[(g, c, "get")]
            data[(g, c, "rps")] = [(a + b) / 2 for a, b in zip(s, gg)]
    return data


def stat(data, g, c, m):
    v = data.get((g, c, m))
    if not v:
        return None
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v), "values": v}


def fmt(x):
    if x is None:
        return "—"
    if x >= 100000:
        return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.0f}k"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_stat(s):
    if not s:
        return "—"
    return f"{fmt(s['median'])} ({fmt(s['min'])}–{fmt(s['max'])})"


def main():
    tsv, meta_f, err_f, out_json = sys.argv[1:5]
    data = load(tsv)
    meta = OrderedDict()
    for line in open(meta_f):
        if "=" in line:
            k, v = line.rstrip("\n").split("=", 1)
            meta[k] = v
    errors = [l.rstrip("\n") for l in open(err_f) if l.strip()]

    def med(g, c, m):
        s = stat(data, g, c, m)
        return s["median"] if s else None

    def ratio(a, b):
        return a / b if a is not None and b not in (None, 0) else None

    targets = []

    def target(what, unit, uds, base, peers, checks, notes=""):
        """uds/base: (label, value); peers: [(label, value)]; checks: [(text, ratio, op, limit)]"""
        verdicts = []
        for text, r, op, lim in checks:
            if r is None:
                verdicts.append(f"{text}: not measured")
                continue
            ok = r >= lim if op == ">=" else r <= lim
            verdicts.append(f"{text}: {r:.2f}× {'met' if ok else '**missed**'}")
        targets.append({"what": what, "unit": unit, "udsock": uds, "raw": base, "peers": peers,
                        "verdicts": verdicts, "notes": notes,
                        "met": all("met" in v and "missed" not in v for v in verdicts)})

    # 1. stream copy through the CLI
    u, rw = med("stream", "udsock", "gbps"), med("stream", "raw", "gbps")
    nc, so, sob, nca = (med("stream", k, "gbps") for k in ("nc", "socat", "socatb", "ncat"))
    target("stream copy, 2 GiB, `udsock connect < file` → `udsock listen > /dev/null`", "GB/s",
           ("udsock CLI", u), ("raw C 64 KiB", rw),
           [("nc", nc), ("socat", so), ("socat -b 262144", sob), ("ncat", nca)],
           [("≥ 0.9× raw", ratio(u, rw), ">=", 0.9), ("≥ 2.5× nc", ratio(u, nc), ">=", 2.5),
            ("≥ 5× socat", ratio(u, so), ">=", 5)],
           f"library (udsock bench stream, same 2 GiB): {fmt(med('stream', 'lib', 'gbps'))} GB/s; "
           f"raw with 256 KiB writes and 4 MiB socket buffers: {fmt(med('stream', 'rawbig', 'gbps'))} GB/s")
    # 2. relay
    u, d = med("relay", "udsock", "gbps"), med("relay", "direct", "gbps")
    target("relay, raw → relay → raw, 2 GiB", "GB/s", ("udsock relay", u), ("raw direct (no relay)", d),
           [("raw_relay read/write", med("relay", "rawrw", "gbps")),
            ("raw_relay splice", med("relay", "rawsp", "gbps")),
            ("socat fork", med("relay", "socat", "gbps")),
            ("socat -b 262144 fork", med("relay", "socatb", "gbps"))],
           [("≥ 0.75× direct raw", ratio(u, d), ">=", 0.75),
            ("≥ 3.5× socat", ratio(u, med("relay", "socat", "gbps")), ">=", 3.5),
            ("≥ 4 GB/s class (vs 4.0)", ratio(u, 4.0), ">=", 1.0)])
    # 3. redis
    for p, lim in (("1", 0.75), ("16", 0.55)):
        u, d = med("redis", f"udsock_P{p}", "rps"), med("redis", f"direct_P{p}", "rps")
        so = med("redis", f"socat_P{p}", "rps")
        target(f"redis-benchmark SET/GET through relay, -P {p} (mean of SET and GET)", "req/s",
               ("udsock relay", u), ("direct", d),
               [("socat fork relay", so), ("raw_relay", med("redis", f"rawrelay_P{p}", "rps"))],
               [(f"≥ {lim}× direct", ratio(u, d), ">=", lim), ("≥ 2× socat", ratio(u, so), ">=", 2)])
    # 4. round trip
    impl = meta.get("rr_impl", "core")
    rs, rc, rsp = (med("rtt", k, "p50") for k in ("rr_same", "rr_cross", "rr_spin"))
    ws, wc, wb = (med("rtt", k, "p50") for k in ("raw_same", "raw_cross", "raw_busy"))
    z, z0, n = med("rtt", "zmq", "p50"), med("rtt", "zmq_cpu0", "p50"), med("rtt", "nng", "p50")
    target(f"request/response round trip 64 B, p50 (udsock bench rr, impl={impl})", "µs",
           ("udsock rr same CPU / cross / spin",
            None if rs is None else f"{fmt(rs)} / {fmt(rc)} / {fmt(rsp)}"),
           ("raw same / cross / busy-poll", None if ws is None else f"{fmt(ws)} / {fmt(wc)} / {fmt(wb)}"),
           [("ZeroMQ unpinned", z), ("ZeroMQ CPU 0", z0), ("NNG", n)],
           [("same CPU ≤ 1.1× raw", ratio(rs, ws), "<=", 1.1),
            ("cross CPU ≤ 1.1× raw", ratio(rc, wc), "<=", 1.1),
            ("--spin ≤ 1.25× raw busy-poll", ratio(rsp, wb), "<=", 1.25),
            ("≥ 10× better than ZeroMQ (zmq unpinned / udsock cross)", ratio(z, rc), ">=", 10),
            ("≥ 10× better than ZeroMQ on one CPU", ratio(z0, rs), ">=", 10),
            ("≥ 10× better than ZeroMQ, udsock with --spin", ratio(z, rsp), ">=", 10)],
           "pingpong (core API, blocking) p50 same/cross/spin: "
           f"{fmt(med('rtt', 'pp_same', 'p50'))} / {fmt(med('rtt', 'pp_cross', 'p50'))} / "
           f"{fmt(med('rtt', 'pp_spin', 'p50'))} µs")
    # 5. pipelined
    u, u64, u16 = med("pipe", "rr256", "ops_s"), med("pipe", "rr64", "ops_s"), med("pipe", "rr16", "ops_s")
    target("pipelined request/response 64 B, one connection, unpinned (rr -P 256)", "msg/s",
           ("udsock rr 1x256", u), ("raw datagram pair x32", med("pipe", "rawdg32", "ops_s")),
           [("ZeroMQ PUSH/PULL 64 B", med("pipe", "zmq", "ops_s")),
            ("NNG PUSH/PULL 64 B", med("pipe", "nng", "ops_s"))],
           [("≥ 1 M msg/s (-P 256)", ratio(u, 1e6), ">=", 1.0),
            ("≥ 1 M msg/s (-P 64)", ratio(u64, 1e6), ">=", 1.0),
            ("vs raw datagram pair", ratio(u, med("pipe", "rawdg32", "ops_s")), ">=", 0.0)],
           f"-P 16: {fmt(u16)}, -P 64: {fmt(u64)} msg/s. With the ends on two vCPUs each batch "
           "costs a cross-CPU round trip (~50 µs here), so throughput is at most depth ÷ RTT "
           "(Little's law): 64 in flight cannot exceed ~1.2 M/s even for raw sockets")
    # 6. connections held
    held, bpc = med("conn", "hold", "held"), med("conn", "hold", "bytes_per_conn")
    target("concurrent connections held by one server", "",
           ("held / user-space B per idle conn",
            None if held is None else f"{fmt(held)} / {fmt(bpc)} B"),
           ("kernel ≈ 4.7 KB each", None), [],
           [("10 000 held", ratio(held, 10000), ">=", 1.0), ("≤ 512 B per idle conn", ratio(bpc, 512), "<=", 1.0)],
           f"p99 with 1000 active clients (rr 1000x1): {fmt(med('conn', 'rr1000', 'p99'))} µs, "
           f"{fmt(med('conn', 'rr1000', 'ops_s'))} req/s (server: impl={impl})")
    # 7. datagrams
    u, r = med("dgram", "uds32", "ops_s"), med("dgram", "raw32", "ops_s")
    target("datagrams 64 B, batched x32 (server CPU 0, client CPU 1)", "dgram/s", ("udsock", u),
           ("raw batched", r), [],
           [("≥ 0.9× raw batched", ratio(u, r), ">=", 0.9)],
           f"unbatched: udsock {fmt(med('dgram', 'uds1', 'ops_s'))} vs raw {fmt(med('dgram', 'raw1', 'ops_s'))}")
    # 8. connect
    u, r = med("conn", "uds", "ops_s"), med("conn", "raw", "ops_s")
    target("connect + accept + close", "conn/s", ("udsock", u), ("raw", r), [],
           [("≥ 0.8× raw", ratio(u, r), ">=", 0.8)],
           f"with one 64 B request/response: udsock {fmt(med('conn', 'udsreq', 'ops_s'))} vs raw "
           f"{fmt(med('conn', 'rawreq', 'ops_s'))}")

    # ---- JSON for bench/report
    cases = []
    for (g, c, m), v in data.items():
        label, better = CASES.get((g, c), (f"{g}/{c}", "h"))
        s = stat(data, g, c, m)
        cases.append({"group": g, "case": c, "metric": m, "label": label, "unit": UNITS.get(m, ""),
                      "better": BETTER.get(m, better), **s})
    with open(out_json, "w") as f:
        json.dump({"meta": meta, "cases": cases, "targets": targets}, f, indent=1)

    # ---- Markdown
    p = print
    p(f"# udsock benchmark results, {meta.get('date_utc', '')}\n")
    p("Produced by `bench/compare` (see bench/README.md). Every contender ran in the same run on the same "
      f"machine, alternating A B C … A B C, {meta.get('reps')} repetitions each; figures are "
      "**median (min–max)**. Ratios are udsock ÷ contender for rates; for latencies (µs) "
      "the ratio is udsock ÷ raw (lower is better) and peer ÷ udsock for \"× better\".\n")
    p("## Machine\n")
    p(f"- CPU: {meta.get('cpu')} × {meta.get('ncpu')} vCPU, {meta.get('mem')}, kernel {meta.get('kernel')}")
    p(f"- run window (UTC): {meta.get('window_utc')}; load average before {meta.get('loadavg_before')}, "
      f"after {meta.get('loadavg_after')} (the machine is shared: load from other users shows as spread)")
    p(f"- versions: {meta.get('udsock')}; socat {meta.get('socat')}; {meta.get('nc')}; ncat {meta.get('ncat')}; "
      f"ZeroMQ {meta.get('zeromq')}; NNG {meta.get('nng')}; Redis {meta.get('redis')}")
    p(f"- stream/relay transfer size: {int(meta.get('big_bytes', '0')) >> 20} MiB"
      f"{' (--quick run: smaller, fewer repetitions)' if meta.get('quick') == '1' else ''}; "
      f"rr implementation: {meta.get('rr_impl')}\n")
    p("## Targets (issue 5)\n")
    p("| what | udsock | raw limit | peers | verdict |")
    p("|---|---|---|---|---|")
    for t in targets:
        uv = t["udsock"][1]
        uv = fmt(uv) if isinstance(uv, float) else (uv or "—")
        rv = t["raw"][1]
        rv = fmt(rv) if isinstance(rv, float) else (rv or "—")
        peers = "; ".join(f"{l} {fmt(v)}" for l, v in t["peers"]) or "—"
        unit = f" {t['unit']}" if t["unit"] else ""
        note = f" — {t['notes']}" if t["notes"] else ""
        p(f"| {t['what']}{unit} | {t['udsock'][0]}: {uv} | {t['raw'][0]}: {rv} | {peers} | "
          f"{'<br>'.join(t['verdicts'])}{note} |")
    pairs = [(g, c[:-5] if c.endswith("_base") else c.replace("_base_", "_"), c, m)
             for (g, c, m) in data if c.endswith("_base") or "_base_" in c]
    if pairs:
        p("## Before and after (--baseline)\n")
        p(f"Baseline binary: `{meta.get('baseline', '?')}`; current: {meta.get('udsock')}. Same run, "
          "alternating with every other contender.\n")
        p("| group | case | metric | after | before | after ÷ before |")
        p("|---|---|---|---|---|---|")
        for g, now, old, m in pairs:
            a, b = stat(data, g, now, m), stat(data, g, old, m)
            r = ratio(a["median"] if a else None, b["median"] if b else None)
            label = CASES.get((g, now), (f"{g}/{now}", "h"))[0]
            p(f"| {g} | {label} | {m} ({UNITS.get(m, '')}) | {fmt_stat(a)} | {fmt_stat(b)} | "
              f"{'—' if r is None else f'{r:.2f}×'} |")
        p("")
    p("\n## Every measurement\n")
    p("| group | case | metric | median (min–max) | n | vs first row of group |")
    p("|---|---|---|---|---|---|")
    first = {}
    for c in cases:
        key = (c["group"], c["metric"], c["case"].rsplit("_P", 1)[1] if "_P" in c["case"] else "")
        first.setdefault(key, c)
        f0 = first[key]
        rel = ratio(c["median"], f0["median"])
        p(f"| {c['group']} | {c['label']} | {c['metric']} ({c['unit']}) | {fmt_stat(c)} | {c['n']} | "
          f"{'' if rel is None else f'{rel:.2f}×'} |")
    import os
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "analysis.md")
    if os.path.exists(notes):
        p("\n" + open(notes).read().strip() + "\n")
    base = out_json[:-5].split("/")[-1]
    p(f"\n## Chart\n\n![udsock and peers relative to the raw limit]({base}.svg)\n")
    p(f"(also {base}.png; made by `bench/report {base}.json`)\n")
    if errors:
        p("## Errors logged during the run\n")
        p("```")
        for e in errors[-40:]:
            p(e)
        p("```")


if __name__ == "__main__":
    main()
