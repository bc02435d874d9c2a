#!/usr/bin/env bash
# The Debian package in a fresh Debian 12 root: mmdebstrap --variant=apt installs the .deb (apt
# resolves its Depends from the Debian archive), then, chrooted, `kumo --version` must name the
# package's version, every installed example must validate, the man page and the completions
# must be where the package puts them, and `kumo completion bash` must be valid bash.
# Builds nothing: give it the package made by scripts/package.
#
#   tests/package/fresh_root_test.sh dist/kumo_<version>_amd64.deb      (as root)
#
# Packages come from this machine's configured apt sources (/etc/apt/sources.list{,.d}). The
# downloaded .debs are kept in $KUMO_PACKAGE_TEST_CACHE (default /var/cache/kumo-package-test),
# so a second run downloads only what changed. The root is made in a tmpfs mounted on a temporary
# directory; both are removed on any exit.
set -euo pipefail

deb=${1:?usage: fresh_root_test.sh path/to/kumo_VERSION_amd64.deb}
[ -f "$deb" ] || { echo "fresh_root_test: no such file: $deb" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "fresh_root_test: must run as root (mmdebstrap --mode=root, chroot)" >&2; exit 1; }
deb=$(realpath "$deb")
version=$(dpkg-deb --field "$deb" Version)
upstream=${version%-*}
cache=${KUMO_PACKAGE_TEST_CACHE:-/var/cache/kumo-package-test}
mkdir -p "$cache"
t0=$(date +%s)

work=$(mktemp -d /var/tmp/kumo-fresh-root.XXXXXX)
cleanup() {
  # Unmount everything below the work directory (the root's tmpfs; whatever an interrupted
  # mmdebstrap left mounted in it), deepest first, then remove it without crossing file systems.
  if [ -d "$work" ]; then
    awk -v w="$work/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r |
      xargs -r -n1 umount -l
    rm -rf --one-file-system "$work"
  fi
  echo "fresh_root_test: $(( $(date +%s) - t0 )) s in all"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -s "$f" ] && grep -qv '^\s*\(#\|$\)' "$f" && sources+=("$f")
done
[ ${#sources[@]} -gt 0 ] || { echo "fresh_root_test: no apt sources configured on this machine" >&2; exit 1; }

failures=0
check() {  # check WHAT COMMAND...: runs COMMAND, reports ok/FAIL
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; failures=$((failures + 1)); fi
}

# The root lives in a tmpfs of its own: installing into it and removing it (an unmount) is fast,
# where a disk under other builds took half a minute just to delete it.
root=$work/root
mkdir -p "$root" "$work/cache-out" "$work/pkg"
mount -t tmpfs -o size=2G,mode=0755 kumo-fresh-root "$root"
# apt reads the .deb given to --include outside the root and dpkg, chrooted, inside it: the same
# path must exist in both. It is removed from the root once installed.
staged=$work/pkg/$(basename "$deb")
cp "$deb" "$staged"
mmdebstrap --variant=apt --mode=root --format=directory --quiet --dpkgopt=force-unsafe-io \
  --include="$staged" \
  --skip=essential/unlink \
  --setup-hook="mkdir -p \"\$1$work/pkg\" && cp $staged \"\$1$staged\"" \
  --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
  --setup-hook="sync-in $cache /var/cache/apt/archives/" \
  --customize-hook="sync-out /var/cache/apt/archives $work/cache-out" \
  --customize-hook="rm -rf \"\$1$work\"" \
  bookworm "$root" "${sources[@]}"
installed=$(date +%s)
echo "fresh_root_test: mmdebstrap with $(basename "$deb") took $((installed - t0)) s"
# Keep exactly the .debs this run used (kumo's own is not a download).
find "$work/cache-out" -maxdepth 1 -name 'kumo_*.deb' -delete
rm -rf "$cache" && mv "$work/cache-out" "$cache"

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 "$@"; }

check "kumo is installed by dpkg as $version" \
  test "$(in_root dpkg-query -W -f='${Status} ${Version}' kumo)" = "install ok installed $version"
out=$(in_root kumo --version 2>&1) || true
check "kumo --version prints $upstream ($out)" grep -qx "kumo $upstream" <<<"$out"
examples=$(cd "$root" && ls usr/share/doc/kumo/examples/*.yaml) || true
check "examples are installed" test -n "$examples"
for example in $examples; do
  check "kumo validate -f /$example" in_root kumo validate -f "/$example"
done
for f in usr/share/man/man1/kumo.1.gz usr/share/bash-completion/completions/kumo \
         usr/share/zsh/vendor-completions/_kumo usr/share/fish/vendor_completions.d/kumo.fish \
         usr/share/doc/kumo/README.md usr/share/doc/kumo/copyright usr/share/doc/kumo/changelog.Debian.gz; do
  check "/$f is installed" test -s "$root/$f"
done
check "the man page is gzip" gzip -t "$root/usr/share/man/man1/kumo.1.gz"
check "/usr/share/bash-completion/completions/kumo is valid bash" bash -n "$root/usr/share/bash-completion/completions/kumo"
if in_root kumo --help | grep -q '^  completion '; then
  check "kumo completion bash | bash -n" bash -n <(in_root kumo completion bash)
else
  echo "skip kumo completion bash (this kumo has no completion command)"
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
