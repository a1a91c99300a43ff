#!/usr/bin/env bash
# gen-certs.sh: a private CA, a broker certificate and client certificates
# for MQTT over TLS with client authentication (mosquitto's
# use_identity_as_username makes each client certificate's CN its user name:
# a device's CN is its device ID, a collector's its fleet client ID).
#
# usage: scripts/gen-certs.sh OUTDIR [CLIENT_CN...]
#   OUTDIR/ca.crt ca.key                      the CA (keep ca.key offline)
#   OUTDIR/server.crt server.key              broker, for localhost / 127.0.0.1 and $BROKER_HOSTS
#   OUTDIR/<CN>.crt <CN>.key                  one per client
# Environment: BROKER_HOSTS="mqtt.example.com 10.0.0.5" adds names to the
# broker certificate; DAYS (default 825) is the validity.
# Needs openssl (Debian: apt-get install openssl).
set -euo pipefail
if [ $# -lt 1 ]; then
	echo "usage: $0 OUTDIR [CLIENT_CN...]" >&2
	exit 2
fi
command -v openssl >/dev/null || { echo "gen-certs: openssl is not installed (apt-get install openssl)" >&2; exit 2; }
out=$1
shift
days=${DAYS:-825}
mkdir -p "$out"
cd "$out"
umask 077
if [ ! -f ca.key ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
		-subj "/CN=LineSight MQTT CA" -keyout ca.key -out ca.crt 2>/dev/null
fi
sign() { # name cn extfile
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
		-keyout "$1.key" -out "$1.csr" 2>/dev/null
	openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
		-extfile "$3" -out "$1.crt" 2>/dev/null
	rm -f "$1.csr"
}
san="DNS:localhost,IP:127.0.0.1"
for h in ${BROKER_HOSTS:-}; do
	if [[ $h =~ ^[0-9.]+$ ]]; then san="$san,IP:$h"; else san="$san,DNS:$h"; fi
done
ext=$(mktemp)
trap 'rm -f "$ext"' EXIT
printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$san" >"$ext"
[ -f server.crt ] || sign server localhost "$ext"
printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$ext"
for cn in "$@"; do
	if ! [[ $cn =~ ^[A-Za-z0-9_-]{1,64}$ ]]; then
		echo "gen-certs: client name $cn must be 1-64 letters, digits, '-' or '_' (it is a device ID)" >&2
		exit 2
	fi
	[ -f "$cn.crt" ] || sign "$cn" "$cn" "$ext"
done
chmod 644 ./*.crt
echo "certificates in $out: ca.crt server.crt $(printf '%s.crt ' "$@")"
