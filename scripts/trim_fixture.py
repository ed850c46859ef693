#!/usr/bin/env python3
"""Trim a fixture (FIXTURES.md) to a time window so it can be bundled in fixtures/.

Usage: scripts/trim_fixture.py SRC DST --before-min 45 --after-min 5 [--trace-keep 0.5]

Metrics keep the samples from `start - before` to `end + after` of the truth's first fault
(other_faults outside the window are dropped). Traces keep whole traces whose first span starts in
the window, a deterministic fraction of them (by trace id) when --trace-keep < 1. The output is
byte-identical for the same input and arguments (gzip without a timestamp).
"""
import argparse, datetime, gzip, hashlib, io, json, os, re, shutil, sys

def ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()

def opener(path):
    return gzip.open(path, "rt") if path.endswith(".gz") else open(path)

def write_gz(path, text):
    with open(path, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
            gz.write(text.encode())

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src"); ap.add_argument("dst")
    ap.add_argument("--before-min", type=float, default=45)
    ap.add_argument("--after-min", type=float, default=5)
    ap.add_argument("--trace-keep", type=float, default=1.0)
    a = ap.parse_args()
    truth = open(os.path.join(a.src, "truth.yaml")).read()
    start = ts(re.search(r"^\s+start:\s*(\S+)", truth, re.M).group(1))
    end_m = re.search(r"^\s+end:\s*(\S+)", truth, re.M)
    end = ts(end_m.group(1)) if end_m else start + 300
    lo, hi = start - a.before_min * 60, end + a.after_min * 60
    os.makedirs(a.dst, exist_ok=True)
    out = []
    for line in opener(os.path.join(a.src, "metrics.om.gz")):
        if line.startswith("#"):
            out.append(line)
            continue
        t = float(line.rsplit(" ", 1)[1])
        if lo <= t <= hi:
            out.append(line)
    write_gz(os.path.join(a.dst, "metrics.om.gz"), "".join(out))
    keep = {}
    lines = [json.loads(l) for l in opener(os.path.join(a.src, "traces.jsonl.gz")) if l.strip()]
    first = {}
    for req in lines:
        for rs in req["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    t = int(s["startTimeUnixNano"]) / 1e9
                    first[s["traceId"]] = min(first.get(s["traceId"], t), t)
    for tid, t in first.items():
        frac = int(hashlib.sha256(tid.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        keep[tid] = lo <= t <= hi and frac < a.trace_keep
    with io.StringIO() as buf:
        for req in lines:
            for rs in req["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    ss["spans"] = [s for s in ss["spans"] if keep[s["traceId"]]]
                rs["scopeSpans"] = [ss for ss in rs["scopeSpans"] if ss["spans"]]
            req["resourceSpans"] = [rs for rs in req["resourceSpans"] if rs["scopeSpans"]]
            if req["resourceSpans"]:
                buf.write(json.dumps(req, separators=(",", ":")) + "\n")
        write_gz(os.path.join(a.dst, "traces.jsonl.gz"), buf.getvalue())
    # truth: drop other_faults outside the window
    kept = []
    for l in truth.splitlines(keepends=True):
        m = re.search(r"start: (\S+?)[,}]", l)
        if l.lstrip().startswith("- {") and m and not (lo <= ts(m.group(1)) <= hi):
            continue
        kept.append(l)
    open(os.path.join(a.dst, "truth.yaml"), "w").write("".join(kept))
    shutil.copy(os.path.join(a.src, "topology.yaml"), os.path.join(a.dst, "topology.yaml"))

if __name__ == "__main__":
    main()
