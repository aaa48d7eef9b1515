#!/usr/bin/env bash
# Fuzzing campaign over the config, CSV, catalog, region and sweep readers (property tests in tests/it/fuzz.rs): runs each
# property with N cases (default 1,000,000) and prints its wall time. Any panic fails the property and
# proptest prints the minimal failing input.
# Usage: scripts/fuzz.sh [N] [TEST_NAME_FILTER]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
filter=${2:-fuzz::}
cargo test --release --no-run --quiet
for t in config_reader_never_panics_on_arbitrary_bytes config_reader_never_panics_on_yamlish_text \
         overrides_never_panic_on_the_quickstart csv_reader_never_panics trace_reader_never_panics \
         nvidia_smi_reader_never_panics model_catalog_with_any_number_anywhere_never_panics \
         device_catalog_with_any_number_anywhere_never_panics region_file_with_any_number_anywhere_never_panics \
         sweep_file_of_yamlish_axes_never_panics; do
  case "fuzz::$t" in *"$filter"*) ;; *) continue ;; esac
  start=$(date +%s)
  PROPTEST_CASES=$n cargo test --release --quiet --test it "fuzz::$t" -- --exact 2>&1 | grep -E "test result|panicked|minimal" || true
  echo "fuzz::$t: $n cases in $(( $(date +%s) - start )) s"
done
