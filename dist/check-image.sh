#!/bin/sh
# Checks a container image built from dist/Containerfile: it holds only the
# static binary, the CA certificates and /data (owned by the image's user),
# it runs as that user, `moat version` names the commit, and `moat serve
# --dev` starts in it and answers /readyz. Uses buildah, which needs no
# daemon; run as root. Build the image first, for example:
#
#   buildah bud -f dist/Containerfile --build-arg VERSION=test \
#     --build-arg COMMIT=$(git rev-parse --short HEAD) -t localhost/moat:test .
#   dist/check-image.sh localhost/moat:test
#
# (Where the overlay driver is not available, give both commands
# `--storage-driver vfs` through BUILDAH_FLAGS / buildah's own flags, and
# `--isolation chroot` to bud.) The served ports are on 127.0.0.1 only.
set -eu

image=${1:?usage: dist/check-image.sh IMAGE}
b="buildah ${BUILDAH_FLAGS:-}"
fail() { echo "check-image: $*" >&2; exit 1; }

c=$($b from "$image")
m=$($b mount "$c")
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	$b umount "$c" >/dev/null 2>&1 || true
	$b rm "$c" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

# Exactly these files, nothing else (no shell, no libc, no package manager).
got=$(cd "$m" && find . -mindepth 1 \( -type f -o -type l \) | sort | tr '\n' ' ')
want="./etc/ssl/certs/ca-certificates.crt ./moat "
[ "$got" = "$want" ] || fail "image files are [$got], want [$want]"
file "$m/moat" | grep -q 'statically linked' || fail "/moat is not a static binary: $(file "$m/moat")"

user=$($b inspect --format '{{.OCIv1.Config.User}}' "$image")
[ "$user" = "65532:65532" ] || fail "image user is \"$user\", want 65532:65532"
owner=$(stat -c %u:%g "$m/data")
[ "$owner" = "$user" ] || fail "/data is owned by $owner, want $user"
entry=$($b inspect --format '{{.OCIv1.Config.Entrypoint}}' "$image")
case "$entry" in
"[/moat serve "*) ;;
*) fail "entrypoint is $entry, want /moat serve ..." ;;
esac

version=$(chroot "$m" /moat version)
echo "check-image: $version"
case "$version" in
"moat "*", commit "*) ;;
*) fail "moat version says \"$version\"" ;;
esac

# A short --dev run as the image's user, in the image's root, with its
# /data: it must migrate, serve and report ready.
base=${PORT_BASE:-27000}
log=$(mktemp)
chroot --userspec="$user" "$m" /moat serve --dev --data /data \
	--dns-listen 127.0.0.1:$((base + 53)) --https-listen 127.0.0.1:$((base + 443)) \
	--web-listen 127.0.0.1:$((base + 81)) --metrics-listen 127.0.0.1:$((base + 91)) \
	--http-listen 127.0.0.1:$((base + 80)) --smtp-listen 127.0.0.1:$((base + 25)) \
	>"$log" 2>&1 &
pid=$!
i=0
until curl -fsS "http://127.0.0.1:$((base + 91))/readyz" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
		cat "$log" >&2
		fail "moat serve --dev did not become ready in the image"
	fi
	sleep 0.2
done
kill "$pid"
wait "$pid" || true
pid=
[ -s "$m/data/moat.db" ] || fail "no database in /data after serve"
[ "$(stat -c %u:%g "$m/data/moat.db")" = "$user" ] || fail "/data/moat.db not owned by $user"
rm -f "$log"
echo "check-image: $image ok (static binary, CA certificates, user $user, serve --dev ready)"
