#!/usr/bin/env bash
# Checks certs/gen-dev-certs.sh: runs it into a fresh temporary directory and inspects the
# result with the openssl command line (curves, CA constraints, SANs, purposes, the CRL,
# the negative-test certificates, file modes), then checks that a second run changes
# nothing, that a missing file or --force regenerates, and that --force replaces every file.
#
# Usage: tests/integration/test_gen_dev_certs.sh path/to/gen-dev-certs.sh
# Prints "ok - ..." or "FAIL - ..." per check; exits 1 if any check failed.
set -euo pipefail

if (($# != 1)); then
    echo "usage: $0 path/to/gen-dev-certs.sh" >&2
    exit 2
fi
# Absolute, because the checks below change directory.
script=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
if [[ ! -x $script ]]; then
    echo "FAIL - $1 is not an executable file" >&2
    exit 1
fi

readonly CLIENTS=(admin operator viewer developer)
readonly SPIFFE_PREFIX=spiffe://bastion.local/user/

tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT
out=$tmp/dev
failures=0

ok() { printf 'ok - %s\n' "$*"; }
fail() {
    printf 'FAIL - %s\n' "$*"
    failures=$((failures + 1))
}
# check DESCRIPTION CMD...: passes when CMD succeeds.
check() {
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then ok "$what"; else fail "$what"; fi
}
# check_not DESCRIPTION CMD...: passes when CMD fails.
check_not() {
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then fail "$what"; else ok "$what"; fi
}
# expect_eq DESCRIPTION ACTUAL EXPECTED
expect_eq() {
    if [[ $2 == "$3" ]]; then ok "$1"; else fail "$1: got '$2', want '$3'"; fi
}

# san FILE: the certificate's subjectAltName entries on one line ("" if it has none).
san() {
    openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null |
        sed -n '2,$p' | sed 's/^ *//' | paste -sd ' ' -
}
# subject FILE: the subject in RFC 2253 form, e.g. "CN=admin".
subject() {
    openssl x509 -in "$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=//'
}
# verify_out FILE ARGS...: openssl verify's output for FILE against the dev CA.
verify_out() {
    local f=$1
    shift
    openssl verify -CAfile "$out/ca.crt" "$@" "$f" 2>&1 || true
}
# snapshot DIR: name, mtime, mode and SHA-256 of every file below DIR.
snapshot() {
    (cd "$1" && find . -type f -printf '%P %T@ %m ' -exec sha256sum {} \; | sort)
}
# digest DIR FILE: the SHA-256 of one file.
digest() {
    sha256sum "$1/$2" | cut -d' ' -f1
}

# --- First run -----------------------------------------------------------------------------
if ! "$script" "$out" >"$tmp/run1.log" 2>&1; then
    cat "$tmp/run1.log"
    fail "first run succeeds"
    echo "1+ checks failed"
    exit 1
fi
ok "first run succeeds"
if grep -q -e 'BEGIN .*PRIVATE KEY' "$tmp/run1.log"; then
    fail "summary shows no key material"
else
    ok "summary shows no key material"
fi

cd "$out"

# --- The CA --------------------------------------------------------------------------------
ca_text=$(openssl x509 -in ca.crt -noout -text)
check "ca.crt key is EC P-256" grep -q 'NIST CURVE: P-256' <<<"$ca_text"
check "ca.crt is CA:TRUE, pathlen:0" grep -q 'CA:TRUE, pathlen:0' <<<"$ca_text"
check "ca.crt basicConstraints is critical" \
    grep -q 'X509v3 Basic Constraints: critical' <<<"$ca_text"
expect_eq "ca.crt subject" "$(subject ca.crt)" "CN=Bastion Dev CA"
expect_eq "ca.key matches ca.crt" "$(openssl pkey -in ca.key -pubout)" \
    "$(openssl x509 -in ca.crt -noout -pubkey)"

# --- The server certificate ----------------------------------------------------------------
server_san=$(san server.crt)
check "server SAN has DNS:localhost" grep -qw 'DNS:localhost' <<<"$server_san"
check "server SAN has IP:127.0.0.1" grep -qw 'IP Address:127.0.0.1' <<<"$server_san"
check "server.crt verifies for sslserver, localhost and 127.0.0.1" \
    openssl verify -CAfile ca.crt -purpose sslserver -verify_hostname localhost \
    -verify_ip 127.0.0.1 server.crt

# --- Client identities ---------------------------------------------------------------------
for name in "${CLIENTS[@]}"; do
    expect_eq "$name.crt subject is CN=$name" "$(subject "$name.crt")" "CN=$name"
    # Exactly one SAN: the whole SAN list equals the one URI.
    expect_eq "$name.crt has exactly one SAN, its SPIFFE URI" "$(san "$name.crt")" \
        "URI:$SPIFFE_PREFIX$name"
    check "$name.crt key is EC P-256" \
        grep -q 'NIST CURVE: P-256' <<<"$(openssl x509 -in "$name.crt" -noout -text)"
    check "$name.crt verifies against the CA for sslclient" \
        openssl verify -CAfile ca.crt -purpose sslclient "$name.crt"
done

# --- Revocation ----------------------------------------------------------------------------
check "admin.crt passes the CRL check" \
    openssl verify -CAfile ca.crt -crl_check -CRLfile ca.crl admin.crt
check "revoked.crt verifies without the CRL (it is revoked, not broken)" \
    openssl verify -CAfile ca.crt -purpose sslclient revoked.crt
check "revoked.crt fails the CRL check as revoked" grep -q 'certificate revoked' \
    <<<"$(verify_out revoked.crt -crl_check -CRLfile ca.crl)"
check "ca.crl is PEM" grep -q -- '-----BEGIN X509 CRL-----' ca.crl

# --- Certificates for negative tests -------------------------------------------------------
check_not "stranger.crt does not verify against the dev CA" \
    openssl verify -CAfile ca.crt stranger.crt
check "stranger.crt verifies against the other CA" \
    openssl verify -CAfile other-ca.crt -purpose sslclient stranger.crt
expect_eq "other-ca.crt subject" "$(subject other-ca.crt)" "CN=Bastion Other CA"
expect_eq "stranger.crt SAN" "$(san stranger.crt)" "URI:${SPIFFE_PREFIX}stranger"
expect_eq "multi.crt has two URI SANs" "$(san multi.crt)" \
    "URI:${SPIFFE_PREFIX}a, URI:${SPIFFE_PREFIX}b"
expect_eq "cnonly.crt has no SAN" "$(san cnonly.crt)" ""
expect_eq "cnonly.crt subject is CN=cnonly" "$(subject cnonly.crt)" "CN=cnonly"
check "expired.crt fails as expired" grep -q 'certificate has expired' \
    <<<"$(verify_out expired.crt)"
check "noeku.crt fails the sslclient purpose" grep -q 'unsuitable certificate purpose' \
    <<<"$(verify_out noeku.crt -purpose sslclient)"
for name in multi cnonly; do
    check "$name.crt otherwise verifies for sslclient" \
        openssl verify -CAfile ca.crt -purpose sslclient "$name.crt"
done

# --- File modes ----------------------------------------------------------------------------
expect_eq "output directory is mode 700" "$(stat -c %a .)" 700
for f in *.key; do
    expect_eq "$f is mode 600" "$(stat -c %a "$f")" 600
done
for f in *.crt ca.crl; do
    expect_eq "$f is mode 644" "$(stat -c %a "$f")" 644
done
expect_eq "one key per certificate" "$(find . -maxdepth 1 -name '*.key' | wc -l)" \
    "$(find . -maxdepth 1 -name '*.crt' | wc -l)"

cd "$tmp"

# --- Idempotence ---------------------------------------------------------------------------
# Let a second pass past any timestamp granularity, so an unchanged mtime means something.
sleep 1
before=$(snapshot "$out")
if "$script" "$out" >"$tmp/run2.log" 2>&1; then ok "second run succeeds"; else fail "second run succeeds"; fi
check "second run says up to date" grep -qxF "dev certificates up to date in $out" "$tmp/run2.log"
if [[ $(snapshot "$out") == "$before" ]]; then
    ok "second run leaves every file unchanged"
else
    fail "second run leaves every file unchanged"
    diff <(printf '%s\n' "$before") <(snapshot "$out") || true
fi

# --- --force ---------------------------------------------------------------------------------
declare -A old
for f in "$out"/*.crt "$out"/*.key "$out"/ca.crl; do
    old[${f##*/}]=$(digest "$out" "${f##*/}")
done
if "$script" --force "$out" >/dev/null 2>&1; then ok "--force run succeeds"; else fail "--force run succeeds"; fi
changed=0
for f in "${!old[@]}"; do
    if [[ -f $out/$f && $(digest "$out" "$f") != "${old[$f]}" ]]; then
        changed=$((changed + 1))
    else
        fail "--force replaced $f"
    fi
done
expect_eq "--force replaced every certificate, key and the CRL" "$changed" "${#old[@]}"

# --- An incomplete set is regenerated ------------------------------------------------------
ca_before=$(digest "$out" ca.crt)
rm -f "$out/viewer.crt"
if "$script" "$out" >/dev/null 2>&1; then ok "run after deleting viewer.crt succeeds"; else fail "run after deleting viewer.crt succeeds"; fi
check "viewer.crt is back" test -f "$out/viewer.crt"
check_not "the whole set, CA included, was regenerated" \
    test "$(digest "$out" ca.crt)" = "$ca_before"
check "the regenerated viewer.crt verifies against the new CA" \
    openssl verify -CAfile "$out/ca.crt" -purpose sslclient "$out/viewer.crt"

if ((failures > 0)); then
    printf '%d check(s) failed\n' "$failures"
    exit 1
fi
echo "all checks passed"
