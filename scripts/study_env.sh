# Sourced by the study scripts that write the tables and figures of the docs (scripts/*_day.sh,
# disaggregation_*.sh, edge_*.sh, power_cap_sweep.sh, carbon_power_cap.sh): runs from the repository
# root, puts the simwatt binary in $bin (SIMWATT when set, else a release build made now, in
# CARGO_TARGET_DIR or target/) and a temporary folder in $out, removed on exit.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -z "${SIMWATT:-}" ]; then
  cargo build --release --quiet
fi
bin=${SIMWATT:-${CARGO_TARGET_DIR:-target}/release/simwatt}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
