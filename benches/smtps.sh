#!/usr/bin/env bash
# smtps:// throughput over one connection: `pressroom send` to N recipients through the
# test SMTP server in implicit-TLS mode with AUTH (tests/smtp/server.py, aiosmtpd), with
# concurrency 1 and no rate limit, so each message waits for the previous one's reply.
# Shows whether a message stalls on Nagle's algorithm (~40 ms each) or not.
#   bash benches/smtps.sh [PRESSROOM_BINARY] [N]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/target/release/pressroom}"
n="${2:-500}"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
openssl req -x509 -days 1 -subj "/CN=bench CA" -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -nodes -keyout ca.key -out ca.pem 2>/dev/null
openssl req -subj /CN=localhost -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
  -extfile ext -out server.pem 2>/dev/null
mkfifo hold
python3 "$root/tests/smtp/server.py" --port 0 --maildir maildir --tls implicit \
  --tls-cert server.pem --tls-key server.key --auth bench:secret < hold > ready 2> smtp.log &
server=$!
exec 3> hold
while [ ! -s ready ]; do sleep 0.05; done
port="$(awk '{print $2}' ready)"
cp -r "$root/config" "$root/releases" .
sed -i "s#transport = \"file\"#transport = \"smtp\"\nurl = \"smtps://127.0.0.1:$port\"\nuser = \"bench\"\npassword_env = \"BENCH_SMTP_PASSWORD\"\ntls_ca = \"$work/ca.pem\"#; s#rate = 20#rate = 100000#; s#concurrency = 4#concurrency = 1#" config/pressroom.toml
for i in $(seq 1 "$n"); do echo "bench$i@example.org,Bench $i,Tidning,,"; done >> config/media.csv
start=$(date +%s.%N)
BENCH_SMTP_PASSWORD=secret "$bin" --config config/pressroom.toml send du-avgor 2>&1 | tail -1
end=$(date +%s.%N)
sent=$(ls maildir/new/*.eml | wc -l)
sessions=$(grep -c ' connect ' smtp.log)
awk -v s="$start" -v e="$end" -v m="$sent" -v c="$sessions" \
  'BEGIN { printf "%d messages over %d connection(s) in %.2f s: %.0f messages/s\n", m, c, e - s, m / (e - s) }'
