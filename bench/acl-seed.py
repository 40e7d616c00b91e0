#!/usr/bin/python3
"""Writes DIR/acls.json for measuring the authorizer (docs/performance.md, "ACL cost"): literal ALLOW bindings that let
User:ANONYMOUS (a PLAINTEXT client) run `tributary bench produce` and `bench consume --topic c`, among FILLER other
bindings (literal and PREFIXED topics and groups of other principals) that a check must look past.
Usage: acl-seed.py DIR [FILLER=1000]."""
import json, os, sys

def acl(kind, name, principal, op, pattern="Literal"):
    return {"resourceType": kind, "resourceName": name, "patternType": pattern, "principal": principal, "host": "*",
            "operation": op, "permission": "Allow"}

me = "User:ANONYMOUS"
acls = [acl("Topic", "bench-produce", me, op) for op in ("Write", "Create")]
acls += [acl("Topic", "c", me, op) for op in ("Write", "Create", "Read")]
acls += [acl("Cluster", "kafka-cluster", me, "IdempotentWrite"), acl("Group", "tributary-bench", me, "Read")]
filler = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
for i in range(filler):
    user = f"User:u{i % 50}"
    if i % 10 == 0: acls.append(acl("Topic", f"team{i}-", user, "Read", "Prefixed"))
    elif i % 10 == 1: acls.append(acl("Group", f"group-{i}", user, "Read"))
    else: acls.append(acl("Topic", f"other-{i}", user, "Write" if i % 2 else "Read"))
os.makedirs(sys.argv[1], exist_ok=True)
with open(os.path.join(sys.argv[1], "acls.json"), "w") as f: json.dump(acls, f)
print(f"{len(acls)} bindings")
