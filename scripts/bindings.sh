#!/usr/bin/env bash
# Builds redoubt-ffi's library and generates its Kotlin, Swift and Python bindings into
# target/bindings/{kotlin,swift,python}, with the crate's own uniffi-bindgen (the same uniffi
# version as the library, so the two always agree).
#
#   scripts/bindings.sh           build and generate
#   scripts/bindings.sh --test    also run the Python suite against the generated module
#
# PROFILE=release builds the release library (what an app ships); the default is debug.
set -euo pipefail
cd "$(dirname "$0")/.."

test=false
case "${1:-}" in
    --test) test=true ;;
    "") ;;
    *) echo "usage: scripts/bindings.sh [--test]" >&2; exit 2 ;;
esac

profile="${PROFILE:-debug}"
flags=(--locked -p redoubt-ffi)
[ "$profile" = release ] && flags+=(--release)
cargo build "${flags[@]}" --lib --bin uniffi-bindgen

target="${CARGO_TARGET_DIR:-target}"
lib=""
for name in libredoubt_ffi.so libredoubt_ffi.dylib redoubt_ffi.dll; do
    if [ -f "$target/$profile/$name" ]; then lib="$target/$profile/$name"; break; fi
done
if [ -z "$lib" ]; then
    echo "bindings.sh: no redoubt_ffi library in $target/$profile after the build" >&2
    exit 1
fi

bindgen="$target/$profile/uniffi-bindgen"
out="$target/bindings"
for language in kotlin swift python; do
    rm -rf "${out:?}/$language"
    mkdir -p "$out/$language"
    # --no-format: ktlint and swiftformat are not needed to generate (an app formats its own).
    "$bindgen" generate "$lib" --language "$language" --out-dir "$out/$language" --no-format
done
# The Python module loads the library from its own directory.
cp "$lib" "$out/python/"
echo "bindings: $(cd "$out" && find kotlin swift python -type f | sort | tr '\n' ' ')"

if $test; then
    suite=crates/redoubt-ffi/tests/python
    export PYTHONPATH="$out/python${PYTHONPATH:+:$PYTHONPATH}"
    # pytest when installed, else the standard library's unittest: both print a summary line.
    if python3 -c 'import pytest' >/dev/null 2>&1; then
        python3 -m pytest -q "$suite"
    else
        python3 -m unittest discover -v -s "$suite" -p 'test_*.py'
    fi
fi
