#!/usr/bin/env bash
# Generates the development PKI that Bastion's servers, clients and integration tests use:
# a dev CA with a CRL, a server certificate for localhost, client identities (SPIFFE URI
# SANs), and misfit certificates for negative tests (revoked, expired, wrong EKU, no SAN,
# several SANs, issued by an unrelated CA). Everything is EC P-256 and short-lived.
#
# Usage: certs/gen-dev-certs.sh [--force] [OUTDIR]
#   OUTDIR defaults to certs/dev in the repository, wherever the script is called from.
#   If OUTDIR already holds a complete set that is valid for at least another day, nothing
#   is changed; otherwise (or with --force) the old set is removed and a new one made.
#   The `openssl ca` state (config, index.txt, serial, crlnumber) stays in OUTDIR/.ca so
#   the set can be inspected, or a certificate revoked later, with the same database.
#
# Needs only the openssl command line (written against OpenSSL 3.0, Debian 12).
set -euo pipefail

readonly CA_DAYS=30
readonly LEAF_DAYS=7
readonly CRL_DAYS=7
readonly SPIFFE_PREFIX=spiffe://bastion.local/user/

# Ordinary client identities, one per role in the example RBAC policy.
readonly CLIENTS=(admin operator viewer developer)
# Certificates made for negative tests; see write_config for what is odd about each.
readonly MISFITS=(revoked stranger multi cnonly expired noeku)

usage() {
    printf 'Usage: %s [--force] [OUTDIR]\n' "${0##*/}"
    printf '  Writes the dev CA, server and client certificates to OUTDIR (default: %s).\n' \
        "certs/dev in the repository"
    printf '  --force  regenerate even if OUTDIR holds a complete, still-valid set\n'
}

die() {
    printf '%s: %s\n' "${0##*/}" "$*" >&2
    exit 1
}

# run CMD...: runs an openssl command quietly (openssl ca is chatty) and shows its output
# only when it fails.
run() {
    local out
    if ! out=$("$@" 2>&1); then
        printf '%s\n' "$out" >&2
        die "failed: $*"
    fi
}

force=0
outdir=
while (($# > 0)); do
    case $1 in
        -f | --force) force=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        --)
            shift
            break
            ;;
        -*)
            usage >&2
            exit 2
            ;;
        *)
            [[ -z $outdir ]] || die "only one OUTDIR may be given"
            outdir=$1
            ;;
    esac
    shift
done
if (($# > 0)); then
    [[ -z $outdir && $# -eq 1 ]] || die "only one OUTDIR may be given"
    outdir=$1
fi

command -v openssl >/dev/null || die "openssl not found"

if [[ -z $outdir ]]; then
    script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    outdir=$(dirname "$script_dir")/certs/dev
fi

# Everything created from here on, keys above all, is private to the owner; certificates
# and the CRL are opened up to 0644 once written.
umask 077
mkdir -p -- "$outdir"
outdir=$(cd -- "$outdir" && pwd)
# Keys must not sit where other users can replace or rename them.
if [[ -n $(find "$outdir" -maxdepth 0 -perm -0002) ]]; then
    die "refusing to write keys into world-writable directory $outdir"
fi
chmod 0700 "$outdir"
cd "$outdir"

# Serialize concurrent runs on the same OUTDIR (say `make certs` while ctest runs). Opened
# for append so that taking the lock never modifies the file.
if command -v flock >/dev/null; then
    exec 9>>.lock
    flock 9
fi

crt_files=(ca.crt other-ca.crt server.crt)
key_files=(ca.key other-ca.key server.key)
for name in "${CLIENTS[@]}" "${MISFITS[@]}"; do
    crt_files+=("$name.crt")
    key_files+=("$name.key")
done
state_files=(.ca/openssl.cnf .ca/index.txt .ca/serial .ca/crlnumber)
all_files=("${key_files[@]}" "${crt_files[@]}" ca.crl "${state_files[@]}")

# A set is current when every file is there, it hangs together (the server and admin
# certificates verify against this CA and its CRL, which is not past nextUpdate), and the
# certificates everyone uses do not expire within a day.
set_is_current() {
    local f
    for f in "${all_files[@]}"; do
        [[ -f $f ]] || return 1
    done
    for f in ca.crt server.crt admin.crt; do
        openssl x509 -in "$f" -noout -checkend 86400 >/dev/null 2>&1 || return 1
    done
    openssl verify -CAfile ca.crt -crl_check -CRLfile ca.crl server.crt admin.crt \
        >/dev/null 2>&1 || return 1
}

if ((force == 0)) && set_is_current; then
    printf 'dev certificates up to date in %s\n' "$outdir"
    exit 0
fi

# Start from nothing: a new CA invalidates every certificate and the old database.
rm -f -- "${key_files[@]}" "${crt_files[@]}" ca.crl
rm -rf -- .ca
mkdir -p .ca/newcerts .ca/other/newcerts
: >.ca/index.txt
: >.ca/other/index.txt
openssl rand -hex 16 >.ca/serial
openssl rand -hex 16 >.ca/other/serial
echo 01 >.ca/crlnumber

# write_config: the `openssl ca` configuration for both CAs, plus one extension section
# per certificate. Paths are relative to OUTDIR, where every openssl command runs, so an
# OUTDIR containing '$' or spaces cannot confuse the config parser.
write_config() {
    local name
    cat <<'EOF'
# Written by certs/gen-dev-certs.sh; rewritten whenever the set is regenerated.
# Use from OUTDIR, e.g.: openssl ca -config .ca/openssl.cnf -revoke NAME.crt
#                        openssl ca -config .ca/openssl.cnf -gencrl -crldays 7 -out ca.crl

[ ca ]
default_ca = CA_dev

[ CA_dev ]
dir              = ./.ca
database         = $dir/index.txt
serial           = $dir/serial
crlnumber        = $dir/crlnumber
new_certs_dir    = $dir/newcerts
certificate      = ./ca.crt
private_key      = ./ca.key
default_md       = sha256
default_days     = 7
default_crl_days = 7
crl_extensions   = ext_crl
policy           = policy_cn
unique_subject   = no
email_in_dn      = no
# Never take extensions from a request: each certificate gets exactly its section below.
copy_extensions  = none

[ CA_other ]
dir              = ./.ca/other
database         = $dir/index.txt
serial           = $dir/serial
new_certs_dir    = $dir/newcerts
certificate      = ./other-ca.crt
private_key      = ./other-ca.key
default_md       = sha256
default_days     = 7
policy           = policy_cn
unique_subject   = no
email_in_dn      = no
copy_extensions  = none

[ policy_cn ]
commonName = supplied

[ req ]
distinguished_name = req_dn
prompt             = no
default_md         = sha256

[ req_dn ]
CN = unused

[ ext_crl ]
authorityKeyIdentifier = keyid:always

[ ext_ca ]
basicConstraints       = critical, CA:true, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always

[ ext_server ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

# Two URI SANs: the server must refuse to pick one.
[ ext_multi ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectAltName         = URI:spiffe://bastion.local/user/a, URI:spiffe://bastion.local/user/b
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

# No SAN at all: an identity only in the CN is not an identity.
[ ext_cnonly ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

# A good SAN but only serverAuth: not usable as a client certificate.
[ ext_noeku ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = URI:spiffe://bastion.local/user/noeku
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
EOF
    # Ordinary client certificates, and the misfits that differ only in their issuer,
    # dates or revocation state: exactly one URI SAN naming the user.
    for name in "${CLIENTS[@]}" revoked stranger expired; do
        cat <<EOF

[ ext_$name ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectAltName         = URI:$SPIFFE_PREFIX$name
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
EOF
    done
}
write_config >.ca/openssl.cnf

# new_key FILE: a fresh EC P-256 private key (PKCS#8 PEM, named curve).
new_key() {
    run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -pkeyopt ec_param_enc:named_curve -out "$1"
}

# new_ca NAME CN: a self-signed CA certificate NAME.crt with key NAME.key.
new_ca() {
    new_key "$1.key"
    run openssl req -config .ca/openssl.cnf -new -x509 -key "$1.key" -subj "/CN=$2" \
        -days "$CA_DAYS" -extensions ext_ca -out "$1.crt"
}

# issue NAME CN CA_SECTION [openssl ca options]: NAME.key and NAME.crt with subject CN and
# the extensions of section ext_NAME, signed by the CA of CA_SECTION.
issue() {
    local name=$1 cn=$2 ca=$3
    shift 3
    new_key "$name.key"
    run openssl req -config .ca/openssl.cnf -new -key "$name.key" -subj "/CN=$cn" \
        -out ".ca/$name.csr"
    run openssl ca -config .ca/openssl.cnf -name "$ca" -batch -notext -extensions "ext_$name" \
        -in ".ca/$name.csr" -out "$name.crt" "$@"
    rm -f -- ".ca/$name.csr"
}

new_ca ca "Bastion Dev CA"
new_ca other-ca "Bastion Other CA"

issue server localhost CA_dev -days "$LEAF_DAYS"
for name in "${CLIENTS[@]}" revoked multi cnonly noeku; do
    issue "$name" "$name" CA_dev -days "$LEAF_DAYS"
done
# openssl ca takes explicit dates, so no clock tricks are needed for an expired certificate.
issue expired expired CA_dev -startdate 20200101000000Z -enddate 20200102000000Z
issue stranger stranger CA_other -days "$LEAF_DAYS"

run openssl ca -config .ca/openssl.cnf -name CA_dev -revoke revoked.crt \
    -crl_reason keyCompromise
run openssl ca -config .ca/openssl.cnf -name CA_dev -gencrl -crldays "$CRL_DAYS" -out ca.crl

chmod 0600 -- "${key_files[@]}"
chmod 0644 -- "${crt_files[@]}" ca.crl

# What was made, one line per file; certificates with their expiry.
describe() {
    case $1 in
        ca) echo "dev CA \"Bastion Dev CA\" (CA:true, pathlen:0)" ;;
        other-ca) echo "unrelated CA \"Bastion Other CA\"" ;;
        server) echo "server CN=localhost, DNS:localhost, IP:127.0.0.1, IP:::1" ;;
        revoked) echo "client ${SPIFFE_PREFIX}revoked, revoked in ca.crl" ;;
        stranger) echo "client ${SPIFFE_PREFIX}stranger, issued by the other CA" ;;
        multi) echo "client with two URI SANs (${SPIFFE_PREFIX}a, ${SPIFFE_PREFIX}b)" ;;
        cnonly) echo "client CN=cnonly without any SAN" ;;
        expired) echo "client ${SPIFFE_PREFIX}expired, expired in 2020" ;;
        noeku) echo "${SPIFFE_PREFIX}noeku with EKU serverAuth only" ;;
        *) echo "client $SPIFFE_PREFIX$1" ;;
    esac
}

printf 'dev certificates written to %s:\n' "$outdir"
for f in "${crt_files[@]}"; do
    name=${f%.crt}
    until=$(openssl x509 -in "$f" -noout -enddate)
    printf '  %-14s %s, until %s\n' "$name.crt" "$(describe "$name")" "${until#notAfter=}"
    printf '  %-14s private key of %s.crt (EC P-256, mode 0600)\n' "$name.key" "$name"
done
until=$(openssl crl -in ca.crl -noout -nextupdate)
printf '  %-14s CRL of the dev CA revoking revoked.crt, next update %s\n' ca.crl \
    "${until#nextUpdate=}"
printf '  %-14s openssl ca state (openssl.cnf, index.txt, serial, crlnumber)\n' .ca/
