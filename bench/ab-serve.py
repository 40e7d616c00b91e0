#!/usr/bin/python3
"""Interleaved A/B of two builds: a fresh `tributary serve` per run, one `tributary bench` each, the broker's CPU from
/proc. Usage: TRIBUTARY_BEFORE=cli TRIBUTARY_AFTER=cli ab-serve.py BENCH PAIRS [bench args...]. Prints one JSON line per run.
The two may be one build with different settings: AB_BEFORE_SET and AB_AFTER_SET add `--set k=v` (space-separated
k=v) to that side's serve; AB_SEED_DIR's files are copied into every fresh data directory (an acls.json, say)."""
import json, os, socket, subprocess, sys, time, shutil, tempfile

BUILDS = {"before": os.environ["TRIBUTARY_BEFORE"],
          "after": os.environ["TRIBUTARY_AFTER"]}
TICK = os.sysconf("SC_CLK_TCK")

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK

def run(build, bench, args):
    d = tempfile.mkdtemp(prefix="ab-"); port = free_port(); cli = BUILDS[build]
    if os.environ.get("AB_SEED_DIR"): shutil.copytree(os.environ["AB_SEED_DIR"], d, dirs_exist_ok=True)
    extra = [a for kv in os.environ.get(f"AB_{build.upper()}_SET", "").split() for a in ("--set", kv)]
    srv = subprocess.Popen([cli, "serve", "--data-dir", d, "--listen", f"127.0.0.1:{port}", "--set", "schema.registry.enable=false"] + extra,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in srv.stdout:
        if line.startswith("Tributary listening"): break
    b = f"127.0.0.1:{port}"
    if bench == "consume":
        subprocess.run([cli, "bench", "produce", "-b", b, "-t", "c", "--count", "5000000", "--warmup", "0", "--json"], capture_output=True, text=True)
    c0 = cpu(srv.pid)
    out = subprocess.run([cli, "bench", bench, "-b", b] + args + ["--json"], capture_output=True, text=True)
    c1 = cpu(srv.pid)
    srv.terminate(); srv.wait(30); shutil.rmtree(d, ignore_errors=True)
    try:
        res = json.loads(out.stdout[out.stdout.index("{"):])
    except Exception:
        res = {"error": out.stdout[-500:] + out.stderr[-500:]}
    res["broker_cpu_s"] = c1 - c0
    return res

if __name__ == "__main__":
    bench, pairs, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    for i in range(pairs):
        order = ["before", "after"] if i % 2 == 0 else ["after", "before"]
        for build in order:
            r = run(build, bench, args)
            print(json.dumps({"build": build, "pair": i, **r}), flush=True)
