#!/usr/bin/env bash
# Regenerates the test PKI (openssl, EC P-256, valid 100 years). Test use only: the keys are
# public in this repository.
#   ca.pem / ca-key.pem          the test CA
#   server.pem / server-key.pem  CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1
#   alice.pem / alice-key.pem    client: CN=alice,O=Chorus Test; SAN email alice@example.com
#   bob.pem / bob-key.pem        client: C=US,O=Chorus Test,OU=dev,CN=bob; no SAN
#   other-ca.pem, mallory.pem / mallory-key.pem   a client certificate from another CA
#   alice.spki-sha256           hex SHA-256 of alice's SubjectPublicKeyInfo (pinned_certs)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
days=36500
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ca() { # name subject
    key "$1-key.pem"
    openssl req -x509 -new -key "$1-key.pem" -subj "$2" -days $days -out "$1.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
leaf() { # name subject ca extensions...
    local name=$1 subj=$2 ca=$3
    shift 3
    key "$name-key.pem"
    openssl req -new -key "$name-key.pem" -subj "$subj" -out "$name.csr"
    printf '%s\n' "$@" >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca-key.pem" -CAcreateserial \
        -days $days -extfile "$name.ext" -out "$name.pem" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
}

ca ca "/CN=Chorus Test CA"
leaf server "/CN=localhost" ca "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
leaf alice "/O=Chorus Test/CN=alice" ca "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth" \
    "subjectAltName=email:alice@example.com"
leaf bob "/C=US/O=Chorus Test/OU=dev/CN=bob" ca "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth"
ca other-ca "/CN=Some Other CA"
leaf mallory "/CN=mallory" other-ca "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth"
openssl x509 -in alice.pem -pubkey -noout | openssl pkey -pubin -outform der | sha256sum \
    | cut -d' ' -f1 >alice.spki-sha256
rm -f ./*.srl ca-key.pem other-ca-key.pem
