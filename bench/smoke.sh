#!/bin/sh
# make bench: a short tour of `udsock bench` (about 15 s). The full,
# side-by-side comparison with raw sockets and the peers is bench/compare.
set -eu
build=${1:-build}
u="$build/udsock"
echo "== round trip, 64 B: same CPU, across CPUs, across CPUs with --spin 50"
"$u" bench pingpong -d 1 --cpus 0
"$u" bench pingpong -d 1 --cpus 0,1 | tail -n +3
"$u" bench pingpong -d 1 --cpus 0,1 --spin 50 | tail -n +3
echo "== transports (pingpong 64 B, same CPU)"
"$u" bench pingpong -d 0.5 --cpus 0 -t unix,abstract,seqpacket,dgram,tcp | tail -n +2
echo "== stream throughput"
"$u" bench stream -d 0.5 -s 4k,64k,256k,1M | tail -n +2
echo "== request/response: 1x1, 1x64 pipelined, 100 clients x 4"
"$u" bench rr -d 1 | tail -n +2
"$u" bench rr -d 1 -P 64 | tail -n +3
"$u" bench rr -d 1 -c 100 -P 4 | tail -n +3
echo "== connections and datagrams"
"$u" bench connect -d 1 | tail -n +2
"$u" bench dgram -d 1 | tail -n +3
