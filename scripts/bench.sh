#!/usr/bin/env bash
# The main job: bring the local target up, run the default suite, gate it on the
# local budgets, write the report, tear down, exit with the gate's verdict.
set -uo pipefail
cd "$(dirname "$0")/.."
export KL_STATE="${KL_STATE:-.kl/bench/env.json}"
suite="${SUITE:-default}"
out="${OUT:-reports/latest}"
kl=.venv/bin/kl
# The bench profile of the local target's config-autoscaler: short windows so that
# waiting for a true zero between cold-start samples takes seconds, not a minute.
export KL_AUTOSCALER_STABLE_WINDOW="${KL_AUTOSCALER_STABLE_WINDOW:-2s}"
export KL_AUTOSCALER_SCALE_TO_ZERO_GRACE_PERIOD="${KL_AUTOSCALER_SCALE_TO_ZERO_GRACE_PERIOD:-1s}"
export KL_AUTOSCALER_TICK="${KL_AUTOSCALER_TICK:-0.5s}"
export KL_DEPLOYER_WINDOW="${KL_DEPLOYER_WINDOW:-none}"  # the functions' per-revision window

trap '$kl down >/dev/null 2>&1 || true' EXIT INT TERM
$kl up || exit 2
mkdir -p "$out"
$kl bench "$suite" --target local --out "$out/results.json"
bench_rc=$?
[ -f "$out/results.json" ] || { echo "bench produced no results (exit $bench_rc)" >&2; exit 2; }
$kl gate "$out/results.json" --budgets benchmarks/budgets/local.yaml --junit "$out/junit.xml" \
  --json "$out/gate.json"
gate_rc=$?
gate_arg=(); [ -f "$out/gate.json" ] && gate_arg=(--gate "$out/gate.json")
$kl report "$out/results.json" "${gate_arg[@]}" --out "$out" || echo "report failed" >&2
echo "report: $out/index.html  junit: $out/junit.xml" >&2
[ $bench_rc -ne 0 ] && [ $gate_rc -eq 0 ] && exit $bench_rc
exit $gate_rc
