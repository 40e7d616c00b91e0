#!/usr/bin/env bash
# Legacy Go clients (Debian's segmentio/kafka-go 0.2.1 and Shopify/sarama 1.22.1, message formats v0 and v1): builds
# go/legacy offline in GOPATH mode against /usr/share/gocode, then runs it against $BOOTSTRAP.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v go >/dev/null || [[ ! -d /usr/share/gocode/src/github.com/segmentio/kafka-go || ! -d /usr/share/gocode/src/github.com/Shopify/sarama ]]; then
  echo "SKIP go-legacy: needs golang-go, golang-github-segmentio-kafka-go-dev and golang-github-shopify-sarama-dev (installed by .ci/run)"
  exit 0
fi
gopath="$(mktemp -d)"
trap 'rm -rf "$gopath"' EXIT
mkdir -p "$gopath/src"
cp -r "$here/go/legacy" "$gopath/src/legacy"
if ! (cd "$gopath" && GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOPROXY=off GOCACHE="$gopath/cache" go build -o "$gopath/legacy" legacy 2>"$gopath/build.log"); then
  grep -v -e warning -e 'note:' -e '^ ' -e '^In file' -e '^cgo' "$gopath/build.log" | tail -n 20
  echo "FAIL go-legacy build: go build failed"
  exit 1
fi
"$gopath/legacy"
