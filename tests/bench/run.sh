#!/usr/bin/env bash
# Hakoniwa side by side with its peers (issue 8): start-up, binary size, peak memory, many
# binds, the default seccomp filter's cost, and throughput. Prints one table of medians and
# ratios at the end. Installs nothing: a missing tool is named, with how to install it, and
# its rows are skipped.
#
# Usage:  cargo build --release && tests/bench/run.sh [HAKONIWA]
#
# Knobs (environment):  ROUNDS=15 hyperfine rounds per comparison (the order of the commands
#                       alternates between rounds, and ratios are taken within each round);
#                       the seccomp row takes 3, throughput half, bwrap's 1000 binds 1
#                       RUNS=20   runs per command per round for start-up rows
#                       LOOPS=10000000  getppid calls in the seccomp row
#                       SANDBOXES=1000  sandboxes in the throughput row
#                       QUICK=1   fewer runs everywhere, for trying the script out
# Works as root and unprivileged (if the kernel lets unprivileged users create user
# namespaces; commands that fail here are reported and left out). Not part of .ci/run.
set -euo pipefail

cd "$(dirname "$0")/../.."
bin=${1:-target/x86_64-unknown-linux-musl/release/hakoniwa}
ROUNDS=${ROUNDS:-15}
warmup=3
RUNS=${RUNS:-20}
LOOPS=${LOOPS:-10000000}
SANDBOXES=${SANDBOXES:-1000}
loop_rounds=3 loop_runs=3
if [ "${QUICK:-0}" = 1 ]; then
    ROUNDS=2 RUNS=10 LOOPS=1000000 SANDBOXES=200 loop_rounds=1 loop_runs=2
fi

if [ ! -x "$bin" ]; then
    echo "run.sh: $bin not found: run 'cargo build --release' first" >&2
    exit 1
fi
bin=$(realpath "$bin")

case $bin in *[[:space:]]*)
    # hyperfine takes each command as one string and splits it on spaces.
    echo "run.sh: $bin: a path with spaces cannot be benchmarked; copy the binary" >&2
    exit 1
    ;;
esac

tmp=$(mktemp -d /tmp/hakoniwa-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"

say() { printf '%s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# The table, one markdown row per line.
table=$tmp/table
: >"$table"
row() { # what, hakoniwa, unshare, bwrap, ratio, target, verdict
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$@" >>"$table"
}

missing=()
have hyperfine || missing+=("hyperfine (timing rows): apt-get install hyperfine")
have bwrap || missing+=("bwrap (bubblewrap columns): apt-get install bubblewrap")
have unshare || missing+=("unshare (unshare columns): apt-get install util-linux")
cc=$(command -v cc || command -v gcc || true)
[ -n "$cc" ] || missing+=("a C compiler (peak RSS, seccomp rows): apt-get install gcc libc6-dev")
for m in "${missing[@]}"; do
    say "run.sh: missing $m"
done

shell_none=(--shell=none)
if have hyperfine && ! hyperfine --help | grep -q -- '"none"'; then
    say "run.sh: this hyperfine cannot run commands without a shell; timings include one"
    shell_none=()
fi

# --- The commands compared -------------------------------------------------------------

hako=("$bin" run -- /bin/true)
hako_unconfined=("$bin" run --seccomp unconfined -- /bin/true)
unshare_cmd=(unshare --user --map-root-user --mount --pid --fork --net --ipc --uts /bin/true)
# bubblewrap building what the KISS policy builds: all namespaces, a tmpfs root (bwrap's
# own), /bin, /lib, /lib64 and /usr bound read-only with symlinks resolved, the four devices
# bound, a new /proc, hostname, a new session, no environment, death with the parent. It has
# no seccomp filter (bwrap takes one only as a file descriptor), which favours it.
bwrap_kiss=(bwrap --unshare-all --die-with-parent --new-session --clearenv --hostname hakoniwa)
for dir in /bin /lib /lib64 /usr; do
    [ -e "$dir" ] && bwrap_kiss+=(--ro-bind "$(realpath "$dir")" "$dir")
done
for dev in null random urandom zero; do
    bwrap_kiss+=(--dev-bind "/dev/$dev" "/dev/$dev")
done
bwrap_kiss+=(--proc /proc)
bwrap_cmd=("${bwrap_kiss[@]}" /bin/true)

# Which of the peers work here (an unprivileged user may not be allowed user namespaces).
works() { # name command...
    local name=$1 err
    shift
    if ! have "$1"; then
        return 1
    fi
    local status=0
    err=$("$@" 2>&1 >/dev/null) || status=$?
    if ((status != 0)); then
        say "run.sh: '$name' fails here, left out: ${err:-exit status $status}"
        return 1
    fi
}
works hakoniwa "${hako[@]}" || {
    say "run.sh: hakoniwa itself fails here"
    exit 1
}
use_unshare=0 use_bwrap=0
works unshare "${unshare_cmd[@]}" && use_unshare=1
works bwrap "${bwrap_cmd[@]}" && use_bwrap=1

# --- Interleaved timing ------------------------------------------------------------------

# compare RUNS NAME "COMMAND" [NAME "COMMAND"...]: ROUNDS hyperfine invocations of all the
# commands (in alternating order), each command's median per round in $tmp/samples as
# "NAME SECONDS ROUND". A COMMAND is one string, split on spaces by hyperfine.
compare() {
    local runs=$1 round
    shift
    : >"$tmp/samples"
    for ((round = 1; round <= ${rounds:-ROUNDS}; round++)); do
        local args=() pairs=("$@") i
        if ((round % 2 == 0)); then
            for ((i = ${#pairs[@]} - 2; i >= 0; i -= 2)); do
                args+=(-n "${pairs[i]}" "${pairs[i + 1]}")
            done
        else
            for ((i = 0; i < ${#pairs[@]}; i += 2)); do
                args+=(-n "${pairs[i]}" "${pairs[i + 1]}")
            done
        fi
        hyperfine "${shell_none[@]}" --style none --warmup "$warmup" --runs "$runs" \
            --export-csv "$tmp/round.csv" "${args[@]}" >/dev/null 2>"$tmp/hyperfine.err" || {
            cat "$tmp/hyperfine.err" >&2
            return 1
        }
        # command,mean,stddev,median,user,system,min,max
        awk -F, -v r="$round" 'NR > 1 { print $1, $4, r }' "$tmp/round.csv" >>"$tmp/samples"
    done
}
# Median over the rounds of NAME's per-round medians, in seconds.
med() { awk -v n="$1" '$1 == n { print $2 }' "$tmp/samples" | median; }
# Median over the rounds of NAME / OTHER, each round's medians divided.
ratio() {
    awk -v a="$1" -v b="$2" '
        $1 == a { x[$3] = $2 } $1 == b { y[$3] = $2 }
        END { for (r in x) if (r in y && y[r] > 0) print x[r] / y[r] }' "$tmp/samples" | median
}
ms() { awk -v s="$1" 'BEGIN { printf "%.2f ms", s * 1000 }'; }
x() { awk -v r="$1" 'BEGIN { printf "%.3fx", r }'; }
at_most() { awk -v v="$1" -v t="$2" 'BEGIN { print (v <= t) ? "met" : "missed" }'; }

# --- Start-up ------------------------------------------------------------------------------

if have hyperfine; then
    say "start-up: $ROUNDS rounds of $RUNS runs per command..."
    set -- hakoniwa "${hako[*]}" hakoniwa-unconfined "${hako_unconfined[*]}"
    ((use_unshare)) && set -- "$@" unshare "${unshare_cmd[*]}"
    ((use_bwrap)) && set -- "$@" bwrap "${bwrap_cmd[*]}"
    compare "$RUNS" "$@"
    h=$(med hakoniwa) hu=$(med hakoniwa-unconfined) u=n/a b=n/a r=n/a verdict="n/a (no unshare)"
    rb=n/a
    if ((use_unshare)); then
        u=$(ms "$(med unshare)") r=$(ratio hakoniwa unshare)
        verdict=$(at_most "$r" 1.0)
        rb="$(x "$(ratio hakoniwa-unconfined unshare)") of unshare"
        r="$(x "$r") of unshare"
    fi
    if ((use_bwrap)); then
        b=$(ms "$(med bwrap)")
        r="$r, $(x "$(ratio hakoniwa bwrap)") of bwrap"
        rb="$rb, $(x "$(ratio hakoniwa-unconfined bwrap)") of bwrap"
    fi
    row "start-up, \`run -- /bin/true\` (KISS, default seccomp)" "$(ms "$h")" "$u" "$b" "$r" \
        "<= 1.0x unshare" "$verdict"
    row "start-up, \`run --seccomp unconfined -- /bin/true\`" "$(ms "$hu")" "" "" "$rb" "" ""
else
    row "start-up" "skipped: no hyperfine" "" "" "" "<= 1.0x unshare" ""
fi

# --- Binary size -------------------------------------------------------------------------

size=$(stat -c %s "$bin")
kib=$((size / 1024))
verdict=$(at_most "$kib" 1024)
[ "$kib" -le 512 ] && verdict="met, stretch met"
[ "$verdict" = met ] && verdict="met (stretch 512 KiB missed)"
row "release binary size" "$kib KiB ($size bytes, static)" "" "" "" "<= 1 MiB (stretch 512 KiB)" \
    "$verdict"

# --- Peak RSS ------------------------------------------------------------------------------

rss_tool=()
if [ -n "$cc" ] && "$cc" -O2 -o "$tmp/maxrss" tests/bench/maxrss.c 2>"$tmp/cc.err"; then
    rss_tool=("$tmp/maxrss")
elif [ -x /usr/bin/time ]; then
    rss_tool=(/usr/bin/time -f %M)
fi
peak() { # the median of 5 tree peaks, in KiB
    local i
    for i in 1 2 3 4 5; do
        "${rss_tool[@]}" "$@" 2>&1 >/dev/null | tail -1 | tr -d ' '
    done | median
}
# The peak of each process of a tree while it runs `sleep 1`, from /proc/PID/status VmHWM
# read half a second in, parent before child: "name KiB > name KiB > ...".
per_process() {
    "$@" >/dev/null 2>&1 &
    local top=$! out="" queue pid
    sleep 0.5
    queue=("$top")
    while ((${#queue[@]})); do
        pid=${queue[0]}
        queue=("${queue[@]:1}")
        [ -r "/proc/$pid/status" ] || continue
        out+="${out:+ > }$(awk '/^Name:/ { n = $2 } /^VmHWM:/ { k = $2 } END { print n, k }' \
            "/proc/$pid/status")"
        # shellcheck disable=SC2207 # pids: one word each
        queue+=($(cat /proc/"$pid"/task/*/children 2>/dev/null || true))
    done
    wait "$top" || true
    echo "$out"
}
if ((${#rss_tool[@]})); then
    say "peak RSS..."
    h=$(peak "${hako[@]}")
    "$bin" run --report-file "$tmp/report.json" -- /bin/true
    init=$(sed 's/.*"max_rss":\([0-9]*\).*/\1/' "$tmp/report.json")
    alone=$(peak /bin/true)
    u=n/a b=n/a
    ((use_unshare)) && u="$(peak "${unshare_cmd[@]}") KiB"
    ((use_bwrap)) && b="$(peak "${bwrap_cmd[@]}") KiB"
    row "peak RSS of the largest process of the tree, /bin/true (wait4 ru_maxrss)" "$h KiB" "$u" \
        "$b" "" "<= 1536 KiB" "$(at_most "$h" 1536)"
    row "... the same for the report's max_rss (init and command) / /bin/true alone" \
        "$init KiB / $alone KiB" "" "" "" "" ""
    h=$(per_process "$bin" run -- /bin/sleep 1)
    u=n/a b=n/a
    ((use_unshare)) && u=$(per_process unshare --user --map-root-user --mount --pid --fork --net \
        --ipc --uts /bin/sleep 1)
    ((use_bwrap)) && b=$(per_process "${bwrap_kiss[@]}" /bin/sleep 1)
    row "... each process's VmHWM in KiB, sandbox running \`sleep 1\`" "$h" "$u" "$b" "" "" ""
else
    row "peak RSS" "skipped: no C compiler nor /usr/bin/time" "" "" "" "<= 1536 KiB" ""
fi

# --- Many binds -----------------------------------------------------------------------------

if have hyperfine; then
    say "binds: $ROUNDS rounds..."
    mkdir -p "$tmp/src"
    echo hello >"$tmp/src/file"
    binds() { # N: hakoniwa with N read-only binds of one directory
        local i cmd="$bin run"
        for ((i = 1; i <= $1; i++)); do cmd+=" --ro-bind $tmp/src:/b/$i"; done
        echo "$cmd -- /bin/true"
    }
    compare $((RUNS / 3 + 1)) 0 "$(binds 0)" 10 "$(binds 10)" 100 "$(binds 100)" \
        1000 "$(binds 1000)"
    t0=$(med 0) t10=$(med 10) t100=$(med 100) t1000=$(med 1000)
    b1000=""
    if ((use_bwrap)); then
        # bubblewrap takes about a second here (it reads /proc/self/mountinfo after every
        # bind): one round of two runs.
        cmd="${bwrap_kiss[*]}"
        for ((i = 1; i <= 1000; i++)); do cmd+=" --ro-bind $tmp/src /b/$i"; done
        rounds=1 warmup=1 compare 2 bwrap-1000 "$cmd /bin/true"
        b1000=$(ms "$(med bwrap-1000)")
    fi
    # The cost of each added bind, between consecutive rows: flat if the cost is linear.
    prev=0 tprev=$t0
    for n in 10 100 1000; do
        eval "t=\$t$n"
        per=$(awk -v t="$t" -v z="$tprev" -v n="$((n - prev))" -v p="$prev" -v m="$n" \
            'BEGIN { printf "%.1f us per bind (%d to %d)", (t - z) / n * 1e6, p, m }')
        extra=$(awk -v t="$t" -v z="$t0" 'BEGIN { printf "%+.2f ms", (t - z) * 1000 }')
        prev=$n tprev=$t
        b="" target="" verdict=""
        if [ "$n" = 1000 ]; then
            target="< 100 ms in total, linear"
            verdict=$(awk -v t="$t" 'BEGIN { print (t < 0.1) ? "met" : "missed" }')
            b=$b1000
        fi
        row "$n \`--ro-bind\` options (run -- /bin/true)" "$(ms "$t") ($extra)" "" "$b" "$per" \
            "$target" "$verdict"
    done
else
    row "1000 \`--ro-bind\` options" "skipped: no hyperfine" "" "" "" "< 100 ms, linear" ""
fi

# --- Seccomp on a system-call-heavy loop --------------------------------------------------

if have hyperfine && [ -n "$cc" ]; then
    mkdir -p "$tmp/loop"
    if "$cc" -O2 -static -o "$tmp/loop/getppid" tests/bench/getppid_loop.c 2>"$tmp/cc.err"; then
        say "seccomp: $loop_rounds rounds of $loop_runs runs of $LOOPS getppid calls..."
        # The cheapest filter there is: allow everything (the architecture check, then ALLOW).
        printf 'description = "allow everything"\ndefault_action = "allow"\n' >"$tmp/allow.toml"
        run="$bin run --ro-bind $tmp/loop:/loop"
        # Long runs: nothing left to warm up, and few rounds.
        rounds=$loop_rounds warmup=0 compare "$loop_runs" \
            default "$run --seccomp default -- /loop/getppid $LOOPS" \
            unconfined "$run --seccomp unconfined -- /loop/getppid $LOOPS" \
            allow-all "$run --seccomp $tmp/allow.toml -- /loop/getppid $LOOPS"
        r=$(ratio default unconfined)
        row "$LOOPS getppid, \`--seccomp default\` vs \`unconfined\`" \
            "$(ms "$(med default)") vs $(ms "$(med unconfined)")" "" "" "$(x "$r")" \
            "<= 1.05x" "$(at_most "$r" 1.05)"
        row "... the same under a filter that allows everything" "$(ms "$(med allow-all)")" \
            "" "" "$(x "$(ratio allow-all unconfined)") of unconfined" "" ""
    else
        say "run.sh: cannot build a static C program (apt-get install libc6-dev); seccomp row skipped"
        cat "$tmp/cc.err" >&2
        row "getppid loop under seccomp" "skipped: no static C library" "" "" "" "<= 1.05x" ""
    fi
else
    row "getppid loop under seccomp" "skipped: needs hyperfine and a C compiler" "" "" "" \
        "<= 1.05x" ""
fi

# --- Throughput ----------------------------------------------------------------------------

if have hyperfine; then
    say "throughput: $(((ROUNDS + 1) / 2)) rounds of $SANDBOXES sandboxes, 2 at a time..."
    many() { echo "seq $SANDBOXES | xargs -P2 -n1 $*"; }
    set -- hakoniwa "$(many "${hako[*]}")"
    ((use_unshare)) && set -- "$@" unshare "$(many "${unshare_cmd[*]}")"
    ((use_bwrap)) && set -- "$@" bwrap "$(many "${bwrap_cmd[*]}")"
    saved=("${shell_none[@]}")
    shell_none=() # a pipe needs the shell; its cost is nothing next to the run
    rounds=$(((ROUNDS + 1) / 2)) warmup=0 compare 1 "$@"
    shell_none=("${saved[@]}")
    rate() { awk -v s="$(med "$1")" -v n="$SANDBOXES" 'BEGIN { printf "%.0f/s", n / s }'; }
    u=n/a b=n/a r=""
    ((use_unshare)) && u=$(rate unshare)
    if ((use_bwrap)); then
        b=$(rate bwrap)
        r="$(x "$(ratio bwrap hakoniwa)") of bwrap's rate"
    fi
    row "throughput: $SANDBOXES sandboxes of /bin/true, 2 at a time (xargs -P2)" \
        "$(rate hakoniwa)" "$u" "$b" "$r" "report vs bwrap" ""
else
    row "throughput" "skipped: no hyperfine" "" "" "" "report vs bwrap" ""
fi

# --- The table ------------------------------------------------------------------------------

echo
echo "hakoniwa benchmarks, $(date -u +%Y-%m-%d), $(uname -r), $(nproc) cores," \
    "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), as $(id -un)"
echo
echo "| what | hakoniwa | unshare | bwrap | ratio | target | |"
echo "|---|---|---|---|---|---|---|"
cat "$table"
echo
echo "Times are medians over interleaved hyperfine rounds (start-up and binds: $ROUNDS rounds;" \
    "seccomp: $loop_rounds; throughput: $(((ROUNDS + 1) / 2)); bwrap's 1000 binds: 1), each" \
    "round's median per command; ratios are medians of the per-round ratios."
((use_unshare)) && echo "unshare: ${unshare_cmd[*]}"
((use_bwrap)) && echo "bwrap: ${bwrap_cmd[*]}"
for m in "${missing[@]}"; do
    echo "Missing $m"
done
