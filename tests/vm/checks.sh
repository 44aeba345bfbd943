#!/bin/sh
# The checks of tests/vm/run.sh. Busybox ash runs them as root in the VM, whose root is the
# initramfs (rootfs), with cgroup2 at /sys/fs/cgroup and the memory, pids and cpu controllers
# enabled for the root cgroup's children.
#
# Each check prints one line: "PASS name", "FAIL name: detail", or "SKIP name: why" when the
# VM lacks what it needs. The last line is VM-CHECKS-DONE; run.sh counts on both.

hakoniwa=/bin/hakoniwa
policy=/vm-policy.toml
scratch=/tmp/checks
nobody=65534
mkdir -p "$scratch"

# The initramfs has busybox and nothing else: /bin holds it and its applet links (and there
# is no /lib or /lib64 for the KISS policy to bind; see the kiss-policy check).
cat >"$policy" <<'EOF'
mounts = [
  { target = "/proc", fstype = "proc" },
  { source = "/bin", target = "/bin" },
  { source = "/dev/null", target = "/dev/null", rw = true },
  { source = "/dev/zero", target = "/dev/zero", rw = true },
]

[env]
PATH = "/bin"
EOF

pass() { echo "PASS $1${2:+: $2}"; }
fail() { echo "FAIL $1: $2"; }
skip() { echo "SKIP $1: $2"; }

# hako NAME ARGS...: `hakoniwa run ARGS...` (killed after 60 s, so no check can hang the VM)
# with stdout in $scratch/NAME.out and stderr in $scratch/NAME.err; its status in $rc.
hako() {
    name=$1
    shift
    timeout 60 "$hakoniwa" run "$@" >"$scratch/$name.out" 2>"$scratch/$name.err"
    rc=$?
}

# The same as uid and gid 65534, with no supplementary groups (busybox nsenter without a
# namespace only changes ids; this busybox has no chpst, and its setpriv cannot).
hako_nobody() {
    name=$1
    shift
    timeout 60 nsenter -S $nobody -G $nobody "$hakoniwa" run "$@" >"$scratch/$name.out" 2>"$scratch/$name.err"
    rc=$?
}

# What went wrong with run NAME, on one line: its status and hakoniwa's error (or else the
# last line of its stderr: the verbose log comes first).
why() {
    err=$(grep -m 1 '^hakoniwa: ' "$scratch/$1.err" || tail -n 1 "$scratch/$1.err")
    echo "exit $rc, stderr: $err"
}

# Every directory of the cgroup tree, to compare before and after a run.
cgroup_tree() {
    find /sys/fs/cgroup -type d | sort
}

# A time from a report, `"KEY":{"secs":S,"nanos":N}`, in milliseconds.
report_ms() {
    sed -n "s/.*\"$2\":{\"secs\":\([0-9]*\),\"nanos\":\([0-9]*\)}.*/\1 \2/p" "$1" |
        { read -r s n && echo $((s * 1000 + n / 1000000)); }
}

have_nobody=yes
if [ "$(nsenter -S $nobody -G $nobody id -u 2>/dev/null)" != $nobody ]; then
    have_nobody=no
fi

# --- pivot-root-fallback: rootfs cannot be pivoted away from; MS_MOVE + chroot instead,
# and the sandbox's / holds what the policy puts there and nothing of the VM's root.
check=pivot-root-fallback
hako $check -v -p "$policy" -- /bin/sh -c 'ls /; if test -e /checks.sh; then echo "/checks.sh is visible"; fi'
listing=$(tr '\n' ' ' <"$scratch/$check.out")
if [ "$rc" != 0 ]; then
    fail $check "$(why $check)"
elif [ "$listing" != "bin dev proc " ]; then
    fail $check "the sandbox's / holds \"$listing\", expected \"bin dev proc \""
elif ! grep -qiE 'fallback|falling back' "$scratch/$check.err"; then
    fail $check "no line of --verbose mentions the fallback from pivot_root"
else
    pass $check
fi

# --- kiss-policy: the embedded policy in a root that has /bin and /usr, but no /lib or
# /lib64: the missing binds are skipped.
check=kiss-policy
want=
for dir in bin dev lib lib64 proc usr; do
    case $dir in
    dev | proc) want="$want$dir " ;;
    *) if [ -e "/$dir" ]; then want="$want$dir "; fi ;;
    esac
done
hako $check -- /bin/sh -c 'ls /'
listing=$(tr '\n' ' ' <"$scratch/$check.out")
if [ "$rc" != 0 ]; then
    fail $check "$(why $check)"
elif [ "$listing" != "$want" ]; then
    fail $check "the sandbox's / holds \"$listing\", expected \"$want\""
else
    pass $check
fi

# --- no-userns-fallback: with user.max_user_namespaces=0, root still gets a sandbox, made
# without a user namespace, and the command holds no capability.
check=no-userns-fallback
max_userns=$(cat /proc/sys/user/max_user_namespaces)
echo 0 >/proc/sys/user/max_user_namespaces
hako $check -v -p "$policy" -- /bin/sh -c 'id -u; grep -E "^Cap(Eff|Bnd):" /proc/self/status'
got=$(tr -s '\t\n' '  ' <"$scratch/$check.out")
want="0 CapEff: 0000000000000000 CapBnd: 0000000000000000 "
if [ "$rc" != 0 ]; then
    fail $check "$(why $check)"
elif [ "$got" != "$want" ]; then
    fail $check "the command printed \"$got\", expected \"$want\""
elif ! grep -qi "user namespace" "$scratch/$check.err"; then
    fail $check "no line of --verbose mentions running without a user namespace"
else
    pass $check
fi

# --- no-userns-unprivileged: the same for uid 65534 is a clear error that names the missing
# user namespaces, and nothing runs.
check=no-userns-unprivileged
if [ $have_nobody = no ]; then
    skip $check "busybox nsenter cannot switch to uid $nobody"
else
    hako_nobody $check -p "$policy" -- /bin/sh -c 'echo ran'
    lines=$(wc -l <"$scratch/$check.err")
    if [ "$rc" != 125 ]; then
        fail $check "$(why $check) (expected 125)"
    elif [ -s "$scratch/$check.out" ]; then
        fail $check "the command ran: \"$(head -n 1 "$scratch/$check.out")\""
    elif [ "$lines" != 1 ] || ! grep -q '^hakoniwa: ' "$scratch/$check.err"; then
        fail $check "expected one line \"hakoniwa: ...\" on stderr, got $lines: $(head -n 1 "$scratch/$check.err")"
    elif ! grep -qi 'user namespace' "$scratch/$check.err"; then
        fail $check "the error does not say that user namespaces are missing: $(cat "$scratch/$check.err")"
    else
        pass $check "$(cat "$scratch/$check.err")"
    fi
fi
echo "$max_userns" >/proc/sys/user/max_user_namespaces

# --- cgroup-memory: a command that holds 64 MiB under --limit-memory 32M is killed: MLE.
# awk doubles a string until it holds 64 MiB, writing every page from user space. (A read
# into a big buffer is no test: a fault taken inside the kernel's copy does not call the
# cgroup's OOM killer, the read just comes back short and the command ends well.)
check=cgroup-memory
before=$(cgroup_tree)
rm -f "$scratch/memory.json"
hako $check --limit-memory 32M --report-file "$scratch/memory.json" -p "$policy" -- \
    /bin/awk 'BEGIN { s = "x"; while (length(s) < 64 * 1024 * 1024) s = s s; print length(s) }'
after=$(cgroup_tree)
if [ ! -s "$scratch/memory.json" ]; then
    fail $check "no report; $(why $check)"
elif ! grep -q '"status":"MLE"' "$scratch/memory.json"; then
    fail $check "report: $(cat "$scratch/memory.json"), stdout: $(cat "$scratch/$check.out")"
elif [ "$before" != "$after" ]; then
    fail $check "cgroups left behind: $(echo "$after" | grep -vxF "$before" | tr '\n' ' ')"
else
    pass $check
fi

# --- cgroup-pids: under --limit-pids 5 a shell cannot start 20 background jobs, and the
# run still ends.
check=cgroup-pids
before=$(cgroup_tree)
# shellcheck disable=SC2016 # the sandbox's shell expands these
hako $check --limit-pids 5 --limit-walltime 20 -p "$policy" -- /bin/sh -c '
    i=0
    while [ $i -lt 20 ]; do sleep 3 & echo started; i=$((i + 1)); done
    wait'
after=$(cgroup_tree)
started=$(grep -c started "$scratch/$check.out")
if [ "$rc" = 124 ] || [ "$rc" = 143 ]; then
    fail $check "the run did not end within 60 s"
elif [ "$rc" = 125 ]; then
    fail $check "$(why $check)"
elif [ "$started" -ge 20 ]; then
    fail $check "all 20 background jobs started"
elif [ "$started" = 0 ]; then
    fail $check "no background job started at all: $(why $check)"
elif ! grep -q "can't fork" "$scratch/$check.err"; then
    fail $check "$started jobs started, but no \"can't fork\" error: $(why $check)"
elif [ "$before" != "$after" ]; then
    fail $check "cgroups left behind: $(echo "$after" | grep -vxF "$before" | tr '\n' ' ')"
else
    pass $check "$started of 20 jobs started"
fi

# --- cgroup-cpus: --limit-cpus 0.2 lets a busy loop of 2 s of real time use about 0.4 s of
# cpu. The loop is ended from inside (busybox timeout), not by --limit-walltime: when the
# walltime kills the sandbox, the killed loop's cpu time is not in the report's times.
check=cgroup-cpus
before=$(cgroup_tree)
rm -f "$scratch/cpus.json"
# (Something must follow timeout, or the shell execs it and the command ends by SIGTERM.)
# shellcheck disable=SC2016 # the sandbox's shell expands these
hako $check --limit-cpus 0.2 --limit-walltime 10 --report-file "$scratch/cpus.json" -p "$policy" -- \
    /bin/sh -c 'timeout 2 sh -c "while :; do :; done"; echo "the loop ended with $?"'
after=$(cgroup_tree)
if [ ! -s "$scratch/cpus.json" ]; then
    fail $check "no report; $(why $check)"
elif ! grep -q '"status":"OK"' "$scratch/cpus.json"; then
    fail $check "report: $(cat "$scratch/cpus.json")"
elif [ "$before" != "$after" ]; then
    fail $check "cgroups left behind: $(echo "$after" | grep -vxF "$before" | tr '\n' ' ')"
else
    user=$(report_ms "$scratch/cpus.json" user_time)
    system=$(report_ms "$scratch/cpus.json" system_time)
    cpu=$((user + system))
    if [ "$cpu" -gt 600 ]; then
        fail $check "the loop used $cpu ms of cpu in 2 s (expected about 400)"
    elif [ "$cpu" -lt 100 ]; then
        fail $check "the loop used only $cpu ms of cpu in 2 s (expected about 400): did it run?"
    else
        pass $check "$cpu ms of cpu in 2 s"
    fi
fi

# --- unprivileged: uid 65534 gets a sandbox (user namespaces enabled again).
check=unprivileged
if [ $have_nobody = no ]; then
    skip $check "busybox nsenter cannot switch to uid $nobody"
else
    hako_nobody $check -p "$policy" -- /bin/sh -c 'id -u'
    if [ "$rc" != 0 ]; then
        fail $check "$(why $check)"
    elif [ "$(cat "$scratch/$check.out")" != $nobody ]; then
        fail $check "id -u printed \"$(cat "$scratch/$check.out")\", expected $nobody"
    else
        pass $check
    fi
fi

# --- kernel-version: which kernel these results are for.
pass kernel-version "$(uname -r)"

echo VM-CHECKS-DONE
