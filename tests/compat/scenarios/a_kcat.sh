#!/usr/bin/env bash
# kcat (Debian, librdkafka 2.0.2): topic auto-creation by producing to a new name, 10,000 keyed records
# with headers in two timed halves, exact read-back, offsets-by-timestamp and metadata.
set -uo pipefail

B="${BOOTSTRAP:?BOOTSTRAP not set}"
W="${COMPAT_WORK:-$(mktemp -d)}/kcat"
mkdir -p "$W"
T="kcat-auto-$(date +%s)-$$"
N=10000
HALF=5000
HEADERS='h1=v1,trace=abc-123'
PY=/usr/bin/python3

pass() { echo "PASS kcat $1: $2"; }
fail() { echo "FAIL kcat $1: $2"; failures=$((failures + 1)); }
failures=0
now_ms() { date +%s%3N; }

# ---- metadata before: broker listed, topic absent ----------------------------------------------
if kcat -L -b "$B" -J -m 10 >"$W/meta0.json" 2>"$W/meta0.err"; then
  if msg=$($PY - "$W/meta0.json" "$B" "$T" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1])); addr = sys.argv[2]; topic = sys.argv[3]
names = [b["name"] for b in m["brokers"]]
if not names: sys.exit("no brokers in metadata")
if addr not in names: sys.exit(f"bootstrap {addr} not among advertised brokers {names}")
if any(t["topic"] == topic for t in m["topics"]): sys.exit(f"topic {topic} exists before the test")
print(f"brokers {names}, controller {m.get('controllerid')}, {len(m['topics'])} topic(s)")
EOF
  ); then pass metadata "$msg"; else fail metadata "$msg"; fi
else
  fail metadata "kcat -L failed: $(head -c 500 "$W/meta0.err")"
fi

# ---- input: key:value lines, values of varied length, some empty, some non-ASCII ---------------
$PY - "$W/input.txt" "$N" <<'EOF'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w", encoding="utf-8") as f:
    for i in range(n):
        if i % 1000 == 7:
            value = ""
        else:
            value = f"value {i} " + "é-xyz"[: i % 5] + "abcdefghij" * (i % 37)
        f.write(f"key-{i:05d}:{value}\n")
EOF
head -n "$HALF" "$W/input.txt" >"$W/input1.txt"
tail -n +"$((HALF + 1))" "$W/input.txt" >"$W/input2.txt"

produce() { # file -> status
  kcat -P -b "$B" -t "$T" -K: -H h1=v1 -H trace=abc-123 -m 30 -X message.timeout.ms=30000 -l "$1" 2>"$1.err"
  local rc=$?
  if [[ $rc -ne 0 ]] || grep -qiE 'error|fail' "$1.err"; then
    echo "rc=$rc: $(head -c 600 "$1.err")"
    return 1
  fi
}

t0=$(now_ms)
if out=$(produce "$W/input1.txt"); then
  pass produce-auto-create "first $HALF records produced to new topic $T in $(($(now_ms) - t0)) ms"
else
  fail produce-auto-create "$out"
fi

# ---- metadata after auto-creation --------------------------------------------------------------
partitions=0
if kcat -L -b "$B" -t "$T" -J -m 10 >"$W/meta1.json" 2>"$W/meta1.err"; then
  if msg=$($PY - "$W/meta1.json" "$T" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1])); topic = sys.argv[2]
ts = [t for t in m["topics"] if t["topic"] == topic]
if len(ts) != 1: sys.exit(f"topic {topic} not in metadata after producing: {m['topics']}")
t = ts[0]
if t.get("error"): sys.exit(f"topic error {t['error']}")
ids = {b["id"] for b in m["brokers"]}
parts = sorted(p["partition"] for p in t["partitions"])
if not parts or parts != list(range(len(parts))): sys.exit(f"partition ids not 0..n-1: {parts}")
for p in t["partitions"]:
    if p.get("error"): sys.exit(f"partition {p['partition']} error {p['error']}")
    if p["leader"] not in ids: sys.exit(f"partition {p['partition']} leader {p['leader']} not a listed broker {ids}")
print(len(parts))
EOF
  ); then
    partitions=$msg
    pass metadata-auto-created "topic $T exists with $partitions partition(s), all led by listed brokers"
  else
    fail metadata-auto-created "$msg"
  fi
else
  fail metadata-auto-created "kcat -L -t failed: $(head -c 500 "$W/meta1.err")"
fi

sleep 1.2
ts_mid=$(now_ms)
sleep 1.2

t0=$(now_ms)
if out=$(produce "$W/input2.txt"); then
  pass produce "second $HALF records produced in $(($(now_ms) - t0)) ms"
else
  fail produce "$out"
fi

# ---- consume everything back -------------------------------------------------------------------
t0=$(now_ms)
timeout 90 kcat -C -b "$B" -t "$T" -e -o beginning -m 30 -f '%p\t%o\t%k\t%s\t%h\t%T\n' >"$W/consumed.tsv" 2>"$W/consume.err"
rc=$?
if [[ $rc -ne 0 ]]; then
  fail consume "kcat -C exited $rc after $(wc -l <"$W/consumed.tsv") records: $(grep -v 'Reached end' "$W/consume.err" | head -c 600)"
fi

# ---- offsets for timestamps (needs the partition count) ----------------------------------------
if [[ $partitions -gt 0 ]]; then
  qargs_mid=(); qargs_zero=(); qargs_future=()
  future=$(($(now_ms) + 3600000))
  for ((p = 0; p < partitions; p++)); do
    qargs_mid+=(-t "$T:$p:$ts_mid"); qargs_zero+=(-t "$T:$p:0"); qargs_future+=(-t "$T:$p:$future")
  done
  kcat -Q -b "$B" -m 30 "${qargs_mid[@]}" >"$W/q_mid.txt" 2>&1; echo "rc=$?" >>"$W/q_mid.txt"
  kcat -Q -b "$B" -m 30 "${qargs_zero[@]}" >"$W/q_zero.txt" 2>&1; echo "rc=$?" >>"$W/q_zero.txt"
  kcat -Q -b "$B" -m 30 "${qargs_future[@]}" >"$W/q_future.txt" 2>&1; echo "rc=$?" >>"$W/q_future.txt"
fi

# ---- exact comparison --------------------------------------------------------------------------
$PY - "$W" "$T" "$N" "$HALF" "$HEADERS" "$ts_mid" "$partitions" <<'EOF'
import os, re, sys
w, topic, n, half, headers, ts_mid, nparts = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6]), int(sys.argv[7])
failed = 0
def ok(name, msg): print(f"PASS kcat {name}: {msg}")
def bad(name, msg):
    global failed; failed += 1; print(f"FAIL kcat {name}: {msg}")

expected = []  # (key, value) in produce order
with open(os.path.join(w, "input.txt"), "rb") as f:
    for line in f.read().split(b"\n")[:-1]:
        k, v = line.split(b":", 1)
        expected.append((k, v))
index = {k: i for i, (k, _) in enumerate(expected)}

rows = []
with open(os.path.join(w, "consumed.tsv"), "rb") as f:
    data = f.read()
lines = data.split(b"\n")
if lines and lines[-1] == b"": lines.pop()
problems = []
for ln, line in enumerate(lines):
    parts = line.split(b"\t")
    if len(parts) != 6:
        problems.append(f"line {ln + 1} malformed: {line[:200]!r}"); continue
    p, o, k, v, h, ts = parts
    rows.append((int(p), int(o), k, v, h.decode("utf-8", "replace"), int(ts)))

def check_records():
    if problems: return problems[0]
    if len(rows) != n: return f"consumed {len(rows)} records, expected {n}"
    seen = {}
    by_part = {}
    for p, o, k, v, h, ts in rows:
        if k not in index: return f"unexpected key {k!r} at partition {p} offset {o}"
        if k in seen: return f"key {k!r} consumed twice (partition {seen[k]} and {(p, o)})"
        seen[k] = (p, o)
        i = index[k]
        if v != expected[i][1]: return f"value mismatch for {k!r} at {p}/{o}: got {v[:80]!r}, expected {expected[i][1][:80]!r}"
        if h != headers: return f"headers mismatch for {k!r} at {p}/{o}: got {h!r}, expected {headers!r}"
        by_part.setdefault(p, []).append((o, i))
    for p, recs in sorted(by_part.items()):
        offs = [o for o, _ in recs]
        if offs != list(range(len(recs))): 
            first = next(j for j, o in enumerate(offs) if o != j)
            return f"partition {p}: offsets not consecutive from 0 in consume order (position {first} has offset {offs[first]})"
        idx = [i for _, i in recs]
        for j in range(1, len(idx)):
            if idx[j] < idx[j - 1]:
                return f"partition {p}: produce order broken at offset {j}: {expected[idx[j]][0]!r} after {expected[idx[j - 1]][0]!r}"
    if nparts and set(by_part) - set(range(nparts)):
        return f"records in partitions {sorted(set(by_part) - set(range(nparts)))} outside metadata's 0..{nparts - 1}"
    return None

err = check_records()
if err: bad("read-back", err)
else: ok("read-back", f"{n} records identical (key, value, headers {headers}), per-partition order kept, offsets consecutive; partitions used: {sorted(set(r[0] for r in rows))}")

# timestamps are CreateTime from the client: first half before ts_mid, second half at/after it
if not err:
    wrong = [(r[2], r[5]) for r in rows if (index[r[2]] < half) != (r[5] < ts_mid)]
    if wrong: bad("timestamps", f"{len(wrong)} records on the wrong side of {ts_mid}, first {wrong[0]}")
    else: ok("timestamps", f"all record timestamps consistent with the produce split at {ts_mid}")

def parse_query(fname):
    txt = open(os.path.join(w, fname), encoding="utf-8", errors="replace").read()
    res = {}
    for m in re.finditer(r"^\s*(\S+) \[(\d+)\]\s+offset (-?\d+)\s*$", txt, re.M):
        if m.group(1) == topic: res[int(m.group(2))] = int(m.group(3))
    return res, txt

if nparts == 0:
    bad("offsets-for-times", "skipped the query: partition count unknown (metadata check failed)")
elif err:
    bad("offsets-for-times", "not checked: read-back failed")
else:
    first_after = {}
    ends = {}
    for p, o, k, v, h, ts in rows:
        ends[p] = max(ends.get(p, 0), o + 1)
        if index[k] >= half and (p not in first_after or o < first_after[p]): first_after[p] = o
    exp_mid = {p: first_after.get(p, -1) for p in range(nparts)}
    exp_zero = {p: (0 if p in ends else -1) for p in range(nparts)}
    exp_future = {p: -1 for p in range(nparts)}
    for name, fname, exp in (("offsets-for-times-mid", "q_mid.txt", exp_mid),
                             ("offsets-for-times-zero", "q_zero.txt", exp_zero),
                             ("offsets-for-times-future", "q_future.txt", exp_future)):
        got, txt = parse_query(fname)
        if got != exp: bad(name, f"got {got}, expected {exp}; kcat said: {txt.strip()[:400]!r}")
        else: ok(name, f"kcat -Q gave {got}")
sys.exit(1 if failed else 0)
EOF
py_rc=$?
[[ $failures -eq 0 && $py_rc -eq 0 ]]
