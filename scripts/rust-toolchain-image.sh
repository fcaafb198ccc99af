#!/usr/bin/env bash
# Builds a local Rust build image (no registry pull needed) from this host:
# the stable rustup toolchain (docs left out), gcc/binutils, libc dev files,
# a shell and the few coreutils a Dockerfile RUN uses. The image is tagged by
# rustc version and built once per machine; prints the tag.
#
#   docker build --build-arg RUST_IMAGE=$(scripts/rust-toolchain-image.sh) ...
set -euo pipefail

sysroot=$(rustc +stable --print sysroot)
version=$(rustc +stable --version | awk '{print $2}')
tag=${TUG_RUST_IMAGE:-tug-test/rust:$version}
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/usr/bin" "$stage/usr/lib" "$stage/usr/lib64" "$stage/usr/sbin" \
  "$stage/root" "$stage/tmp" "$stage/etc/ssl/certs" "$stage/usr/local/rust"
chmod 1777 "$stage/tmp"
# Debian bookworm is merged-/usr.
ln -s usr/bin "$stage/bin"
ln -s usr/lib "$stage/lib"
ln -s usr/lib64 "$stage/lib64"
ln -s usr/sbin "$stage/sbin"

# `cp --parents` with absolute paths trips over coreutils 9.1 for directories: copy from /.
cpp_() { (cd / && cp -a --parents "${1#/}" "$stage"); }

# Copies a path (and, for a symlink, what it points to) keeping its /usr location.
add() {
  local p=$1
  [ -e "$p" ] || return 0
  local real
  real=$(readlink -f "$p")
  case "$p" in /bin/*|/lib/*|/lib64/*|/sbin/*) p="/usr$p" ;; esac
  cpp_ "$real"
  # Links (often through /etc/alternatives) point straight at the real file.
  if [ "$p" != "$real" ] && [ ! -e "$stage$p" ] && [ ! -L "$stage$p" ]; then
    mkdir -p "$stage$(dirname "$p")"
    ln -s "$real" "$stage$p"
  fi
}

tools=(sh dash bash mkdir touch cp mv rm ln cat ls env find chmod true false echo test
  gcc cc c++ g++ cpp ld ld.bfd as ar ranlib strip nm objcopy
  x86_64-linux-gnu-gcc-12 x86_64-linux-gnu-ld.bfd x86_64-linux-gnu-as x86_64-linux-gnu-ar
  x86_64-linux-gnu-ranlib x86_64-linux-gnu-strip x86_64-linux-gnu-nm x86_64-linux-gnu-objcopy)
elves=()
for t in "${tools[@]}"; do
  p=$(command -v "$t" 2>/dev/null || true)
  [ -n "$p" ] && [ -f "$p" ] || continue
  add "$p"
  elves+=("$(readlink -f "$p")")
done

gccver=$(gcc -dumpversion)
for d in "/usr/lib/gcc/x86_64-linux-gnu/$gccver" "/usr/libexec/gcc/x86_64-linux-gnu/$gccver"; do
  [ -d "$d" ] || continue
  cpp_ "$d"
  while IFS= read -r f; do elves+=("$f"); done < <(find "$d" -type f -perm -u+x)
done

# libc development files for static linking.
for f in /usr/lib/x86_64-linux-gnu/{crt1.o,crti.o,crtn.o,Scrt1.o,rcrt1.o,gcrt1.o,grcrt1.o,Mcrt1.o} \
         /usr/lib/x86_64-linux-gnu/lib{c,m,mvec,pthread,dl,rt,util,resolv,anl,c_nonshared}{,-*}.{a,so} \
         /usr/lib/x86_64-linux-gnu/libgcc_s.so* /lib64/ld-linux-x86-64.so.2; do
  add "$f"
done

# The toolchain, without its documentation.
(cd "$sysroot" && tar --exclude=./share/doc --exclude=./share/man -cf - .) | tar -C "$stage/usr/local/rust" -xf -
elves+=("$stage/usr/local/rust/bin/cargo" "$stage/usr/local/rust/bin/rustc")
while IFS= read -r f; do elves+=("$f"); done < <(find "$stage/usr/local/rust/lib" -maxdepth 1 -name '*.so')

# Shared libraries every binary needs.
for e in "${elves[@]}"; do
  ldd "$e" 2>/dev/null | awk '/=> \//{print $3} /^\t\/.*ld-linux/{print $1}' || true
done | sort -u | while IFS= read -r lib; do
  case "$lib" in "$stage"/*) continue ;; esac
  add "$lib"
done

cp /etc/ssl/certs/ca-certificates.crt "$stage/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$stage/etc/passwd"
printf 'root:x:0:\n' > "$stage/etc/group"

tar -C "$stage" -cf - . | docker import \
  --change 'ENV PATH=/usr/local/rust/bin:/usr/local/bin:/usr/bin:/bin' \
  --change 'ENV HOME=/root' \
  --change 'WORKDIR /' \
  - "$tag" >/dev/null
echo "$tag"
