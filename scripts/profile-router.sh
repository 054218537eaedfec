#!/usr/bin/env bash
# Where a signal's CPU goes in a real `signalbox serve` (issue 19 item 7). For
# each ingest mode it starts a private nats-server (loopback, JetStream on) and
# a router with one subscription that fires for every signal, sends SIGNALS
# signals from a separate load process (nats-py; in JetStream mode as a
# backlog published while the router is stopped, which it then drains; in
# core mode as fast as the client publishes), samples the router process
# alone with `perf record` while the load runs, and prints per stage (decode,
# match, firing build, store transaction, firing encode, publish, acks,
# pipeline hand-offs, NATS client, runtime/other) the share of the router's
# sampled CPU and µs per signal: that share times the router's CPU per signal,
# read from /proc/<pid>/stat over the same run.
#
#   scripts/profile-router.sh                      # both modes, 60,000 signals each
#   MODES=core SIGNALS=30000 scripts/profile-router.sh
#   scripts/profile-router.sh --classify DIR/perf.txt [CPU_US_PER_SIGNAL]   # stages of a saved `perf script` text
#
# Inputs (environment):
#   SIGNALBOX_BIN          router binary; default $CARGO_TARGET_DIR/profiling/signalbox
#                          (build: cargo build --profile profiling -p signalbox-cli)
#   SIGNALBOX_NATS_SERVER  nats-server binary; default .tools/bin/nats-server, then PATH
#   MODES                  "jetstream core" (default), or one of them
#   SIGNALS                signals per mode (60000)
#   RATE                   core mode: signals per second, a steady pace (default 0: as
#                          fast as the load process publishes)
#   BATCH_SIZE             the router's batch_size (256)
#   PERF_FREQ              samples per second of CPU time (999)
#   CALL_GRAPH             perf --call-graph argument (dwarf,16384); "fp" needs frame pointers
#   PERF=0                 no perf: only the router's CPU per signal from /proc
#   OUT                    working directory (default a new /tmp/profile-router.XXXX)
#   ROUTER_WRAP            a command the router runs under, e.g. "valgrind --tool=callgrind
#                          --callgrind-out-file=/tmp/cg.%p" for instruction counts, which
#                          unlike CPU time repeat from run to run (use with PERF=0)
#   PEER=relay             meter the relay peer of benches/e2e_load (`--relay-child`: the
#                          same NATS work, no store, no matching) instead of the router,
#                          with the same load, /proc figures and ROUTER_WRAP; its binary is
#                          RELAY_BIN, default the newest target/release/deps/e2e_load-*
#                          (build: cargo bench --bench e2e_load --no-run). The figures
#                          named router_* are then the relay's.
# Needs: perf, python3 with nats-py (pip install nats-py).
#
# Outputs, under OUT/<mode>/: perf.data, perf.txt (`perf script`), stages.txt
# (the table, also printed), top.txt (top symbols per stage), router.log,
# run.json (signals, seconds, router and nats-server CPU, the router's system (kernel) share of it, bytes and calls the
# router wrote, sockets included, its minor page faults, its resident memory at the end, and signals per
# ingest transaction from its /metrics). The data directory
# is on disk (default durability: an fsync per commit), batch_size 256 unless BATCH_SIZE.
#
# Stages are given by the innermost frame of a sample's call stack that one of
# the RULES below names (with its context, when a rule has one); a sample no
# rule names is "runtime/other". Shares are of the router's samples only
# (perf -p); kernel frames count when perf may record them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# ---------------------------------------------------------------- helpers (python)
HELPER=$(mktemp /tmp/profile-router-helper.XXXX.py)
STARTED=() # processes this script started, stopped by their id on exit
cleanup() {
    for pid in "${STARTED[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill -TERM "$pid" 2>/dev/null || true; done
    rm -f "$HELPER"
}
trap cleanup EXIT
cat >"$HELPER" <<'PY'
import asyncio, json, re, sys, time, collections

SUBJECT = "signals.load"

async def setup(url, mode):
    """JetStream mode: the RUNS stream that captures the firings (so the
    router publishes them to JetStream and awaits PubAcks)."""
    import nats
    nc = await nats.connect(url)
    if mode == "jetstream":
        js = nc.jetstream()
        await js.add_stream(name="RUNS", subjects=["runs.>"], storage="file")
    await nc.close()

async def ready(url, mode):
    """Waits until the router takes signals: JetStream, its durable consumer
    exists; core, a request on signals.probe is answered (stored)."""
    import nats
    nc = await nats.connect(url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if mode == "jetstream":
                await nc.jetstream().consumer_info("SIGNALS", "signalbox")
                break
            else:
                await nc.request("signals.probe", b'{"id":"probe"}', timeout=1)
                break
        except Exception:
            await asyncio.sleep(0.2)
    else:
        sys.exit("router not ready after 60 s")
    await nc.close()

async def backlog(url, n):
    """JetStream: publishes n signals into SIGNALS (async publishes, PubAcks
    awaited pipelined) while the router is stopped, so that it then drains a
    backlog at its own full speed (a Python publisher alone makes ~3,000/s
    here, less than the router takes)."""
    import nats
    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=4000)
    for i in range(n):
        await js.publish_async(SUBJECT, b'{"id":"load-%d","params":{"n":%d}}' % (i, i))
    await asyncio.wait_for(js.publish_async_completed(), 300)
    await nc.close()

async def drain(url, n):
    """JetStream: waits until the RUNS stream holds n firings. Prints JSON:
    signals, seconds (from the call, made as the router is resumed)."""
    import nats
    t0 = time.monotonic()
    nc = await nats.connect(url)
    js = nc.jetstream()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        info = await js.stream_info("RUNS")
        if info.state.messages >= n:
            break
        await asyncio.sleep(0.02)
    else:
        sys.exit("firings missing in RUNS: %d of %d" % (info.state.messages, n))
    secs = time.monotonic() - t0
    await nc.close()
    print(json.dumps({"signals": n, "seconds": round(secs, 3)}))

async def load(url, n, rate=0.0):
    """Core: publishes n signals as fast as the client goes (plain publishes;
    the router's subscription buffers what it has not taken yet), or at a
    steady `rate` per second when it is not 0, and waits for n firings on
    fired.load. Prints JSON: signals, seconds."""
    import nats
    nc = await nats.connect(url, pending_size=64 * 1024 * 1024)
    got = 0
    done = asyncio.Event()
    async def on_firing(msg):
        nonlocal got
        got += 1
        if got >= n:
            done.set()
    await nc.subscribe("fired.load", cb=on_firing, pending_msgs_limit=n + 1000)
    await nc.flush()
    t0 = time.monotonic()
    for i in range(n):
        if rate:
            ahead = t0 + i / rate - time.monotonic()
            if ahead > 0:
                await nc.flush()
                await asyncio.sleep(ahead)
        await nc.publish(SUBJECT, b'{"id":"load-%d","params":{"n":%d}}' % (i, i))
        if i % 1000 == 999:
            await nc.flush()
    await nc.flush()
    try:
        await asyncio.wait_for(done.wait(), 300)
    except asyncio.TimeoutError:
        sys.exit("firings missing: %d of %d" % (got, n))
    secs = time.monotonic() - t0
    await nc.close()
    print(json.dumps({"signals": n, "seconds": round(secs, 3)}))

# ---- stage rules: (stage, frame regex, context regex or None). A sample's
# stage is given by its innermost frame (leaf first) that a rule's frame regex
# matches, provided some frame further out (towards the root) matches the
# rule's context regex. At each frame the rules are tried in this order, so
# the context rules at the top claim the NATS client calls that the outbox
# and the settling tasks make.
RULES = [
    # Firings serialized for the wire (Firing::message_bytes → serde_json)
    # and their headers, in the outbox.
    ("firing encode", r"serde_json::ser|serde::ser::Serialize|serde_core::ser|message_bytes|firing_headers|HeaderMap|HeaderValue", r"delivery::outbox"),
    # Firings handed to the NATS client by the outbox's drainer (the client
    # call up to its channel to the connection task; the socket write itself
    # is in "NATS client").
    ("publish", r"async_nats::", r"outbox::Drainer::publish|outbox::send"),
    # PubAcks of firings, awaited and parsed by the outbox's settling task.
    ("acks", r"async_nats::|serde_json::de|PublishAckFuture", r"outbox::settle_pass"),
    # Signals settled after their commit (JetStream: Message::ack, a publish
    # on the reply subject; core: a reply only to requests).
    ("acks", r"async_nats::", r"InFlight::push|PendingBatch::settle"),
    ("acks", r"outbox::settle_pass|PublishAckFuture|jetstream::message::Message::ack", None),
    # Matching: the matcher engine (raw-bytes path included).
    ("match", r"signalbox_matcher::", None),
    # Planning a firing: templates, firing id (SHA-256), the catalog's plan.
    ("firing build", r"signalbox_model::template|signalbox_model::firing::firing_id|sha2::|Compiled::firing|pipeline::catalog::", None),
    # The store transaction: redb, the store crate (row encoding included),
    # fsync in the kernel; "marking delivered" (the outbox's own transaction) too.
    ("store transaction", r"redb::|signalbox_store::|mark_delivered|fsync|fdatasync|ext4_|jbd2", None),
    # Decoding and validating signals.
    ("decode", r"signalbox_model::signal|signalbox_model::value|signalbox_model::limits|sources::nats::message::decode|parse_with_subject_name|serde_json::de", r"sources::nats"),
    # The outbox's drainer around the client calls (reading the handoff,
    # passes, route cache).
    ("publish", r"outbox::Drainer::publish|outbox::send|resolve_route", None),
    # What carries a batch between tasks and threads: ingest queueing, the
    # commit thread's loop outside the store, the handoff of firings to the
    # outbox, results back to the settling task, the settling task itself.
    ("pipeline hand-offs", r"pipeline::handoff|pipeline::ingest::|pipeline::committer|submit_batch|InFlight::push|PendingBatch::settle|outbox::Drainer|outbox::run", None),
    # The NATS client's own tasks: the connection task (socket reads and
    # protocol parsing: signals and PubAcks in; socket writes: firings and
    # acks out; one socket for all, so not split further), subscriptions and
    # the JetStream pull consumer; the kernel's TCP work under them.
    ("NATS client", r"async_nats::|tokio::net::tcp|tcp_sendmsg|tcp_recvmsg|sock_|__sys_sendto|__sys_recvfrom|ksys_write|ksys_read|do_writev|do_readv", None),
]
_RULES = [(s, re.compile(f), re.compile(c) if c else None) for s, f, c in RULES]
STAGES = ["decode", "match", "firing build", "store transaction", "firing encode", "publish", "acks", "pipeline hand-offs", "NATS client", "runtime/other"]

def parse_perf_script(path):
    """Yields (weight, frames leaf first) from `perf script -F comm,tid,period,ip,sym,dso`."""
    weight, frames = None, []
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if weight is not None:
                    yield weight, frames
                weight, frames = None, []
                continue
            if line[0] not in " \t":
                parts = line.split()
                try:
                    weight = int(parts[-1].rstrip(":"))
                except ValueError:
                    weight = 1
                frames = []
            else:
                # "\t    addr sym+off (dso)"
                rest = line.strip().split(None, 1)
                sym = rest[1] if len(rest) > 1 else "[unknown]"
                sym = re.sub(r"\+0x[0-9a-f]+ \(", " (", sym)
                frames.append(sym)
    if weight is not None:
        yield weight, frames

def classify_frames(frames):
    for i, fr in enumerate(frames):
        for stage, frx, ctx in _RULES:
            if frx.search(fr) and (ctx is None or any(ctx.search(o) for o in frames[i:])):
                return stage, fr
    return "runtime/other", frames[0] if frames else "[unknown]"

def classify(path, us_per_signal=None, top_out=None):
    total = 0
    by_stage = collections.Counter()
    leaf_by_stage = collections.defaultdict(collections.Counter)
    frame_by_stage = collections.defaultdict(collections.Counter)
    for w, frames in parse_perf_script(path):
        stage, fr = classify_frames(frames)
        total += w
        by_stage[stage] += w
        leaf = re.sub(r" \(.*\)$", "", frames[0]) if frames else "[unknown]"
        leaf_by_stage[stage][leaf] += w
        frame_by_stage[stage][re.sub(r" \(.*\)$", "", fr)] += w
    lines = []
    head = "%-20s %8s" % ("stage", "share")
    if us_per_signal:
        head += " %12s" % "µs/signal"
    lines.append(head)
    for s in STAGES:
        share = by_stage[s] / total if total else 0
        row = "%-20s %7.1f%%" % (s, 100 * share)
        if us_per_signal:
            row += " %12.2f" % (share * us_per_signal)
        lines.append(row)
    row = "%-20s %7.1f%%" % ("total", 100.0)
    if us_per_signal:
        row += " %12.2f" % us_per_signal
    lines.append(row)
    if top_out:
        with open(top_out, "w") as f:
            for s in STAGES:
                f.write("== %s: %.1f%% of samples\n" % (s, 100 * by_stage[s] / total if total else 0))
                f.write("   deciding frames:\n")
                for name, w in frame_by_stage[s].most_common(8):
                    f.write("   %6.2f%%  %s\n" % (100 * w / total, name[:160]))
                f.write("   leaf symbols:\n")
                for name, w in leaf_by_stage[s].most_common(8):
                    f.write("   %6.2f%%  %s\n" % (100 * w / total, name[:160]))
    return "\n".join(lines)

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "setup":
        asyncio.run(setup(sys.argv[2], sys.argv[3]))
    elif cmd == "ready":
        asyncio.run(ready(sys.argv[2], sys.argv[3]))
    elif cmd == "backlog":
        asyncio.run(backlog(sys.argv[2], int(sys.argv[3])))
    elif cmd == "drain":
        asyncio.run(drain(sys.argv[2], int(sys.argv[3])))
    elif cmd == "load":
        asyncio.run(load(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    elif cmd == "classify":
        us = float(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None
        top = sys.argv[4] if len(sys.argv) > 4 else None
        print(classify(sys.argv[2], us, top))
PY

if [[ "${1:-}" == "--classify" ]]; then
    python3 "$HELPER" classify "$2" "${3:-}" "$(dirname "$2")/top.txt"
    exit 0
fi

# ---------------------------------------------------------------- inputs
BIN=${SIGNALBOX_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/profiling/signalbox}
NATS_SERVER=${SIGNALBOX_NATS_SERVER:-}
if [[ -z "$NATS_SERVER" ]]; then
    if [[ -x "$ROOT/.tools/bin/nats-server" ]]; then NATS_SERVER=$ROOT/.tools/bin/nats-server
    else NATS_SERVER=$(command -v nats-server || true); fi
fi
MODES=${MODES:-"jetstream core"}
SIGNALS=${SIGNALS:-60000}
RATE=${RATE:-0}
PERF_FREQ=${PERF_FREQ:-999}
CALL_GRAPH=${CALL_GRAPH:-dwarf,16384}
PERF=${PERF:-1}
ROUTER_WRAP=${ROUTER_WRAP:-}
OUT=${OUT:-$(mktemp -d /tmp/profile-router.XXXX)}
PEER=${PEER:-router}
case $PEER in
    router) [[ -x "$BIN" ]] || { echo "no router binary at $BIN (cargo build --profile profiling -p signalbox-cli)" >&2; exit 1; } ;;
    relay)
        # shellcheck disable=SC2012 # the newest build of the bench binary
        RELAY_BIN=${RELAY_BIN:-$(ls -t "${CARGO_TARGET_DIR:-$ROOT/target}"/release/deps/e2e_load-* 2>/dev/null | grep -v '\.d$' | head -1)}
        [[ -n "$RELAY_BIN" && -x "$RELAY_BIN" ]] || { echo "no relay binary (cargo bench --bench e2e_load --no-run, or set RELAY_BIN)" >&2; exit 1; }
        BIN=$RELAY_BIN ;;
    *) echo "PEER is router or relay, not $PEER" >&2; exit 1 ;;
esac
[[ -x "$NATS_SERVER" ]] || { echo "no nats-server (set SIGNALBOX_NATS_SERVER)" >&2; exit 1; }
python3 -c 'import nats' || { echo "python3 needs nats-py" >&2; exit 1; }
TICK=$(getconf CLK_TCK)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# CPU time (user + system, all threads, living and gone) of a process, in µs.
cpu_us() { awk -v t="$TICK" '{ sub(/^.*\) /, ""); print ($12 + $13) * 1000000 / t }' "/proc/$1/stat"; }
# Its system (kernel) CPU time alone, in µs: perf here samples user code only
# (perf_event_paranoid 2) and callgrind counts user instructions only.
sys_us() { awk -v t="$TICK" '{ sub(/^.*\) /, ""); print $13 * 1000000 / t }' "/proc/$1/stat"; }
# Per thread of a process: "tid name user_ticks system_ticks minor_faults
# wchar syscw", one line each (threads that ended in between are not in it).
thread_ticks() {
    for t in /proc/"$1"/task/*; do
        stat=$(awk -v tid="${t##*/}" '{ n = $0; sub(/^[^(]*\(/, "", n); sub(/\) .*$/, "", n); gsub(/ /, "_", n)
            sub(/^.*\) /, ""); print tid, n, $12, $13, $8 }' "$t/stat" 2>/dev/null) || continue
        io=$(awk '/^wchar:/ { w = $2 } /^syscw:/ { c = $2 } END { print w + 0, c + 0 }' "$t/io" 2>/dev/null) || io="0 0"
        [[ -n $stat ]] && echo "$stat $io"
    done
}
# Bytes a process handed to write-like syscalls (/proc/<pid>/io `wchar`) and
# its write syscalls (`syscw`), as "wchar syscw".
io_counts() { awk '/^wchar:/ { w = $2 } /^syscw:/ { c = $2 } END { print w, c }' "/proc/$1/io"; }
# Minor page faults of a process (/proc/<pid>/stat field 10): each is a page
# of memory touched for the first time since it was mapped or purged.
min_faults() { awk '{ sub(/^.*\) /, ""); print $8 }' "/proc/$1/stat"; }

echo "$PEER: binary $BIN; nats-server $NATS_SERVER; $SIGNALS signals per mode; output in $OUT"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"

for MODE in $MODES; do
    DIR=$OUT/$MODE
    mkdir -p "$DIR/nats" "$DIR/data" "$DIR/subs"
    PORT=$(free_port); HTTP=$(free_port)
    URL=nats://127.0.0.1:$PORT
    "$NATS_SERVER" -a 127.0.0.1 -p "$PORT" -js -sd "$DIR/nats" >"$DIR/nats.log" 2>&1 &
    NATS_PID=$!; STARTED+=("$NATS_PID")
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
    python3 "$HELPER" setup "$URL" "$MODE"
    if [[ $MODE == jetstream ]]; then TARGET=runs.load; else TARGET=fired.load; fi
    cat >"$DIR/subs/load.yaml" <<EOF
id: load
signal: load
where: {n: [{numeric: [">=", 0]}]}
action: {publish: {subject: $TARGET}}
params: {n: "{n}"}
EOF
    cat >"$DIR/signalbox.toml" <<EOF
data_dir = "$DIR/data"
subscriptions = ["$DIR/subs"]
ingest = "$MODE"
batch_size = ${BATCH_SIZE:-256}
[nats]
urls = ["$URL"]
[http]
listen = "127.0.0.1:$HTTP"
EOF
    if [[ $PEER == router ]]; then
        # shellcheck disable=SC2086 # ROUTER_WRAP is a command line, split on purpose
        RUST_LOG=warn $ROUTER_WRAP "$BIN" serve --config "$DIR/signalbox.toml" >"$DIR/router.log" 2>&1 &
        ROUTER_PID=$!; STARTED+=("$ROUTER_PID")
        python3 "$HELPER" ready "$URL" "$MODE"
    else
        # The relay stops when its stdin closes: a FIFO this script holds
        # open (fd 7) until the mode ends, or until it exits.
        mkfifo "$DIR/relay.stdin"; exec 7<>"$DIR/relay.stdin"
        # shellcheck disable=SC2086 # ROUTER_WRAP is a command line, split on purpose
        $ROUTER_WRAP "$BIN" --relay-child "$MODE" "$URL" >"$DIR/router.log" 2>&1 <"$DIR/relay.stdin" &
        ROUTER_PID=$!; STARTED+=("$ROUTER_PID")
        for _ in $(seq 600); do grep -q '^ready' "$DIR/router.log" && break; sleep 0.1; done
        grep -q '^ready' "$DIR/router.log" || { echo "the relay did not say ready within 60 s" >&2; exit 1; }
    fi

    if [[ $MODE == jetstream ]]; then
        # The backlog goes in while the router is stopped; it drains it after.
        kill -STOP "$ROUTER_PID"
        python3 "$HELPER" backlog "$URL" "$SIGNALS"
    fi
    if [[ $PERF == 1 ]]; then
        perf record -F "$PERF_FREQ" --call-graph "$CALL_GRAPH" -p "$ROUTER_PID" -o "$DIR/perf.data" \
            >"$DIR/perf-record.log" 2>&1 &
        PERF_PID=$!; STARTED+=("$PERF_PID")
        sleep 1
    fi
    R0=$(cpu_us "$ROUTER_PID"); S0=$(sys_us "$ROUTER_PID"); N0=$(cpu_us "$NATS_PID"); read -r W0 C0 < <(io_counts "$ROUTER_PID"); F0=$(min_faults "$ROUTER_PID"); thread_ticks "$ROUTER_PID" >"$DIR/threads0.txt"
    if [[ $MODE == jetstream ]]; then
        kill -CONT "$ROUTER_PID"
        RESULT=$(python3 "$HELPER" drain "$URL" "$SIGNALS")
    else
        RESULT=$(python3 "$HELPER" load "$URL" "$SIGNALS" "$RATE")
    fi
    sleep 0.5 # the last firings' acks and "marked delivered"
    R1=$(cpu_us "$ROUTER_PID"); S1=$(sys_us "$ROUTER_PID"); N1=$(cpu_us "$NATS_PID"); read -r W1 C1 < <(io_counts "$ROUTER_PID"); F1=$(min_faults "$ROUTER_PID"); thread_ticks "$ROUTER_PID" >"$DIR/threads1.txt"
    RSS=$(awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/$ROUTER_PID/status")
    if [[ $PERF == 1 ]]; then kill -INT "$PERF_PID"; wait "$PERF_PID" || true; fi
    # Ingest transactions so far (startup's empty ones are few), from /metrics.
    [[ $PEER == relay ]] || COMMITS=$(python3 -c 'import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1], timeout=30).read().decode()
print(sum(int(float(l.split()[-1])) for l in text.splitlines() if l.startswith("signalbox_commit_seconds_count")))' \
        "http://127.0.0.1:$HTTP/metrics" || echo 0)
    kill -TERM "$ROUTER_PID"; wait "$ROUTER_PID" || true
    if [[ $PEER == relay ]]; then exec 7>&-; fi
    kill -TERM "$NATS_PID"; wait "$NATS_PID" || true

    US=$(python3 -c "print(round(($R1 - $R0) / $SIGNALS, 2))")
    NUS=$(python3 -c "print(round(($N1 - $N0) / $SIGNALS, 2))")
    SUS=$(python3 -c "print(round(($S1 - $S0) / $SIGNALS, 2))")
    python3 - "$RESULT" "$US" "$NUS" "$((W1 - W0))" "$((C1 - C0))" "$((F1 - F0))" "$RSS" "${COMMITS:-0}" "$SUS" >"$DIR/run.json" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
r["router_cpu_us_per_signal"] = float(sys.argv[2])
r["router_system_cpu_us_per_signal"] = float(sys.argv[9])
r["nats_server_cpu_us_per_signal"] = float(sys.argv[3])
# Socket writes count too (NATS publishes and acks), not only the store file.
r["router_bytes_written_per_signal"] = round(int(sys.argv[4]) / r["signals"])
r["router_write_calls_per_signal"] = round(int(sys.argv[5]) / r["signals"], 2)
r["router_page_faults_per_signal"] = round(int(sys.argv[6]) / r["signals"], 3)
r["router_rss_mib_at_end"] = int(sys.argv[7])
# None when there is no count (the relay has no store; /metrics did not answer).
commits = int(sys.argv[8])
r["signals_per_ingest_transaction"] = round(r["signals"] / commits, 1) if commits > 0 else None
r["signals_per_second"] = round(r["signals"] / r["seconds"])
print(json.dumps(r))
PY
    echo
    echo "== $MODE: $(cat "$DIR/run.json")"
    # CPU per signal by thread name (user / system), threads alive at the end.
    python3 - "$DIR/threads0.txt" "$DIR/threads1.txt" "$TICK" "$SIGNALS" <<'PY' | tee "$DIR/threads.txt"
import collections, sys
def load(path):
    rows = (l.split() for l in open(path) if l.strip())
    return {r[0]: (r[1], *map(int, r[2:7])) for r in rows}
before, after, tick, signals = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
by = collections.defaultdict(lambda: [0, 0, 0, 0, 0, 0])
for tid, (name, *now) in after.items():
    _, *then = before.get(tid, (name, 0, 0, 0, 0, 0))
    row = by[name]
    row[0] += 1
    for i, (a, b) in enumerate(zip(now, then)):
        row[i + 1] += a - b
print("thread (count): user / system µs, minor page faults, bytes written, write calls; per signal")
for name, (count, u, s, f, w, c) in sorted(by.items(), key=lambda kv: -(kv[1][1] + kv[1][2])):
    if u + s:
        print(f"  {name} ({count}): {u * 1e6 / tick / signals:.2f} / {s * 1e6 / tick / signals:.2f}, "
              f"{f / signals:.3f}, {w / signals:.0f}, {c / signals:.3f}")
PY
    if [[ $PERF == 1 ]]; then
        perf script -i "$DIR/perf.data" -F comm,tid,period,ip,sym,dso --no-inline >"$DIR/perf.txt" 2>"$DIR/perf-script.log"
        python3 "$HELPER" classify "$DIR/perf.txt" "$US" "$DIR/top.txt" | tee "$DIR/stages.txt"
        echo "(top symbols per stage: $DIR/top.txt)"
    fi
done
