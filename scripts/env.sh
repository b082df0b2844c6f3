# Environment shared by Cordon's scripts (source it): cache, build directory, tools on PATH.
export CORDON_CACHE="${CORDON_CACHE:-$HOME/.cache/cordon}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CORDON_CACHE/target}"
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$CORDON_CACHE/lib/libonnxruntime.so}"
export PATH="$CORDON_CACHE/tools/bin:$HOME/.cargo/bin:$PATH"
