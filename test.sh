#!/usr/bin/env bash
# The project's test command: unit/integration tests (dotnet test) and the client compatibility suite
# (tests/compat/run.sh against a real `tributary serve`). Ends with "N passed, M failed" over both.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

out_dir="$(mktemp -d)"
trap 'rm -rf "$out_dir"' EXIT

echo "== dotnet test Tributary.slnx -c Release"
# A test that hangs is killed after five minutes and named in the output, so the run ends instead of timing out.
dotnet test Tributary.slnx -c Release --blame-hang-timeout 5m --blame-hang-dump-type none 2>&1 | tee "$out_dir/dotnet-test.log"
unit_rc=${PIPESTATUS[0]}

# VSTest prints one line per test assembly:
#   "Passed!  - Failed:     0, Passed:    12, Skipped:     0, Total:    12, Duration: ... - X.Tests.dll (net10.0)"
unit_passed=0
unit_failed=0
unit_skipped=0
while IFS= read -r line; do
  f=$(sed -nE 's/.*Failed:[[:space:]]*([0-9]+),.*/\1/p' <<<"$line")
  p=$(sed -nE 's/.*Passed:[[:space:]]*([0-9]+),.*/\1/p' <<<"$line")
  s=$(sed -nE 's/.*Skipped:[[:space:]]*([0-9]+),.*/\1/p' <<<"$line")
  unit_failed=$((unit_failed + ${f:-0}))
  unit_passed=$((unit_passed + ${p:-0}))
  unit_skipped=$((unit_skipped + ${s:-0}))
done < <(grep -E '^[[:space:]]*(Passed|Failed)![[:space:]]+-[[:space:]]+Failed:' "$out_dir/dotnet-test.log")
# A failed build or crashed test host reports no totals: count it as a failure.
if [[ $unit_rc -ne 0 && $unit_failed -eq 0 ]]; then
  unit_failed=1
fi
echo "== dotnet test: $unit_passed passed, $unit_failed failed, $unit_skipped skipped (exit $unit_rc)"

compat_passed=0
compat_failed=0
echo "== dotnet build src/Tributary.Cli -c Release"
if dotnet build src/Tributary.Cli -c Release -nologo; then
  echo "== tests/compat/run.sh --no-build"
  tests/compat/run.sh --no-build 2>&1 | tee "$out_dir/compat.log"
  compat_rc=${PIPESTATUS[0]}
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out_dir/compat.log" | tail -n 1)
  if [[ -n "$summary" ]]; then
    compat_passed=$(awk '{print $1}' <<<"$summary")
    compat_failed=$(awk '{print $3}' <<<"$summary")
  fi
  if [[ $compat_rc -ne 0 && $compat_failed -eq 0 ]]; then
    compat_failed=1
  fi
else
  compat_rc=1
  compat_failed=1
  echo "FAIL: dotnet build src/Tributary.Cli failed; compatibility suite not run"
fi
echo "== compat: $compat_passed passed, $compat_failed failed (exit $compat_rc)"

# Name every failure again at the very end, where a truncated log still shows it.
if [[ $unit_failed -gt 0 || $compat_failed -gt 0 ]]; then
  echo "== failures"
  grep -E '^[[:space:]]*Failed [A-Za-z_][A-Za-z0-9_.]+' "$out_dir/dotnet-test.log" | head -n 20 || true
  grep -E -A 3 '^[[:space:]]*Error Message:' "$out_dir/dotnet-test.log" | head -n 40 || true
  grep -E 'The active test run was aborted|Test host process crashed|hang' "$out_dir/dotnet-test.log" | head -n 5 || true
  [[ -f "$out_dir/compat.log" ]] && { grep -E '^FAIL ' "$out_dir/compat.log" | head -n 20 || true; }
fi

total_passed=$((unit_passed + compat_passed))
total_failed=$((unit_failed + compat_failed))
echo "$total_passed passed, $total_failed failed"
[[ $unit_rc -eq 0 && $compat_rc -eq 0 && $total_failed -eq 0 ]]
