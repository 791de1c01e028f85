#!/bin/sh
# Builds the fuzz targets (libFuzzer + ASan + UBSan) into build-fuzz/ (or $1).
# The library's sources are compiled with the same instrumentation and linked
# into each target directly; no CMake needed.  Needs clang and libFuzzer
# (libclang-rt-dev).  Usage: fuzz/build.sh [outdir]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build-fuzz}
CC=${CC:-clang}
mkdir -p "$out/obj"

SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
CFLAGS="-std=c11 -O2 -g $SAN -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
 -Wno-unused-parameter -Werror -D_POSIX_C_SOURCE=200809L -I$root/include -I$root/src"
LIBS="-lm -lpthread"
if printf '#include <zlib.h>\nint main(void){return 0;}\n' | $CC -x c - -lz -o /dev/null 2>/dev/null; then
    CFLAGS="$CFLAGS -DNB_HAVE_ZLIB=1"
    LIBS="$LIBS -lz"
fi

# every library source, in whatever folder of src/ it lives
srcs=$(find "$root/src" -name '*.c' -not -path '*/dist/*' | LC_ALL=C sort)  # (src/dist: MPI, not fuzzed)
objs=""
for s in $srcs; do
    rel=${s#"$root"/src/}
    o="$out/obj/$(printf '%s' "$rel" | tr / _).o"
    objs="$objs $o"
    # rebuild when the source or any header is newer than the object
    if [ ! -f "$o" ] || [ "$s" -nt "$o" ] || [ -n "$(find "$root/src" "$root/include" -name '*.h' -newer "$o" 2>/dev/null)" ] \
       || [ -n "$(find "$root/src" -name '*.def' -newer "$o" 2>/dev/null)" ]; then
        echo "$CC -c $rel"
        # shellcheck disable=SC2086
        $CC $CFLAGS -c "$s" -o "$o"
    fi
done

for t in fuzz_ops fuzz_files fuzz_lifetime; do
    [ -f "$root/fuzz/$t.c" ] || continue
    echo "$CC $t"
    # shellcheck disable=SC2086
    $CC $CFLAGS -fsanitize=fuzzer "$root/fuzz/$t.c" $objs $LIBS -o "$out/$t"
done
echo "fuzz targets in $out"
