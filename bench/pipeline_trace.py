#!/usr/bin/env python3
"""Where a pipelined token's time goes: 3 nodes on 127.0.0.1 and a client, with
LLM_NODE_TRACE_STEPS=1, then the median of each segment of a decode step (steady-clock
timestamps from every process). usage: bench/pipeline_trace.py MODEL.gguf [THREADS] [TOKENS]"""
import json, os, re, statistics, subprocess, sys, time

model = sys.argv[1]
threads = sys.argv[2] if len(sys.argv) > 2 else "2"
n_gen = sys.argv[3] if len(sys.argv) > 3 else "64"
binary = os.environ.get("LLM_NODE", "build/src/cli/llm-node")
env = dict(os.environ, LLM_NODE_TRACE_STEPS="1")
layers = json.loads(subprocess.check_output([binary, "info", model, "--json"]))["layers"]
spans = [(0, layers // 3), (layers // 3, 2 * layers // 3), (2 * layers // 3, layers)]
nodes, logs = [], []
for i, (a, b) in enumerate(spans):
    log = open(f"/tmp/llm-node-trace-{i}.log", "w+")
    logs.append(log)
    nodes.append(subprocess.Popen([binary, "serve", "-m", model, "--layers", f"{a}:{b}", "--listen", f"127.0.0.1:{7201 + i}",
                                   "--key", f"/tmp/llm-node-trace-{i}.key", "-t", threads],
                                  stdout=subprocess.DEVNULL, stderr=log, env=env))
try:
    time.sleep(2)
    route = ",".join(f"127.0.0.1:{7201 + i}" for i in range(3))
    client = subprocess.run([binary, "bench", "-m", model, "-p", "0", "-n", n_gen, "-t", threads, "-r", "1", "-o", "json",
                             "--route", route], capture_output=True, text=True, env=env, check=True)
finally:
    for n in nodes:
        n.terminate()
    for n in nodes:
        n.wait()

hops = {}  # (span index, pos) -> record, last run only (positions repeat per run)
for i, log in enumerate(logs):
    log.seek(0)
    for line in log:
        m = re.search(r"\[trace\] hop \S+ pos (\d+) arrived (\d+) started (\d+) finished (\d+) sent (\d+)", line)
        if m:
            hops[(i, int(m[1]))] = [int(x) for x in m.groups()[1:]]
client_steps = []
for line in client.stderr.splitlines():
    m = re.search(r"\[trace\] client pos (\d+) sent (\d+) back (\d+) done (\d+)", line)
    if m:
        client_steps.append([int(x) for x in m.groups()])
client_steps = client_steps[-int(n_gen):]  # the timed run

segments = {}
def add(name, ns):
    segments.setdefault(name, []).append(ns / 1000.0)
for k, (pos, sent, back, done) in enumerate(client_steps):
    h = [hops.get((i, pos)) for i in range(3)]
    if None in h:
        continue
    prev = sent
    for i, (arr, start, fin, out) in enumerate(h):
        add(f"{i}: seal + link + unpack", arr - prev)
        add(f"{i}: queue wait", start - arr)
        add(f"{i}: compute", fin - start)
        add(f"{i}: hand back + pack", out - fin)
        prev = out
    add("client: link in", back - prev)
    add("client: unpack + head", done - back)
    if k + 1 < len(client_steps):
        add("client: to next send", client_steps[k + 1][1] - done)
    add("token total", (client_steps[k + 1][1] if k + 1 < len(client_steps) else done) - sent)
print(f"{len(client_steps)} steps; tok/s {json.loads(client.stdout)[0]['avg_ts']:.2f}; medians in microseconds:")
for name, v in segments.items():
    print(f"  {name:26s} {statistics.median(v):9.1f}   (p90 {sorted(v)[int(len(v) * 0.9)]:9.1f})")
