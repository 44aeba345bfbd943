#!/usr/bin/env bash
# Tests on a real kernel: boot Debian bookworm's kernel in QEMU with an initramfs that holds
# the static hakoniwa, busybox and tests/vm/checks.sh, run the checks as root in the
# initramfs, and read their results from the serial console.
#
# Usage: tests/vm/run.sh     (as root, as CI runs it; another user needs QEMU and cpio there)
#
# What it gets:
#   - qemu-system-x86 and cpio, installed with apt-get only when qemu-system-x86_64 or cpio
#     is missing (the only packages it installs);
#   - the .deb files of linux-image-amd64, of the versioned kernel package that it depends
#     on, and of busybox-static, with `apt-get download` into target/vm-cache/ on the first
#     run, unpacked there with dpkg-deb: never installed, no maintainer script runs, /boot
#     is not touched. Later runs reuse them; `rm -rf target/vm-cache` fetches them again.
# Everything it writes goes under target/: the cache, the initramfs tree and archive, and
# the serial console's log (target/vm/console.log).
#
# Exit status 0 only if every check passed and the VM got to the end of the checks.
set -euo pipefail
cd "$(dirname "$0")/../.."

cache=target/vm-cache
work=target/vm
bin=target/x86_64-unknown-linux-musl/release/hakoniwa
vm_timeout=170

say() { printf 'vm: %s\n' "$*"; }
die() { printf 'vm: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

started=$(now)

# apt-get, run as root, downloads as the unprivileged _apt user, which may not reach a
# checkout under a 0700 home; downloads go straight into our own directory instead.
apt_opts=()
if [ "$(id -u)" = 0 ]; then
    apt_opts=(-o APT::Sandbox::User=root)
fi

# apt-get with a retry after `apt-get update`: a fresh machine may have no package lists.
apt_get() {
    if ! apt-get "${apt_opts[@]}" -q "$@"; then
        say "apt-get $1 failed; updating the package lists and trying again"
        apt-get -q update
        apt-get "${apt_opts[@]}" -q "$@"
    fi
}

# --- host tools -----------------------------------------------------------------------
need_pkgs=()
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
command -v cpio >/dev/null || need_pkgs+=(cpio)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing ${need_pkgs[*]}: install them (apt-get install ${need_pkgs[*]}) or run as root"
    say "installing ${need_pkgs[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt_get install -y --no-install-recommends "${need_pkgs[@]}"
fi

# --- kernel and busybox, downloaded and unpacked, never installed -----------------------
# The one .deb of package NAME in $cache/debs.
only_deb() {
    local debs=("$cache/debs/$1"_*.deb)
    if [ "${#debs[@]}" != 1 ] || [ ! -f "${debs[0]}" ]; then
        die "expected one .deb of $1 in $cache/debs, found: ${debs[*]}"
    fi
    echo "${debs[0]}"
}
if [ ! -f "$cache/vmlinuz" ]; then
    rm -rf "$cache/debs" "$cache/kernel"
    mkdir -p "$cache/debs" "$cache/kernel"
    say "fetching the kernel: apt-get download linux-image-amd64 (into $cache/debs)"
    (cd "$cache/debs" && apt_get download linux-image-amd64)
    # The metapackage holds no kernel; it depends on the versioned package that does.
    meta=$(only_deb linux-image-amd64)
    kpkg=$(dpkg-deb -f "$meta" Depends | tr ',' '\n' | sed -n 's/^ *\(linux-image-[0-9][^ ]*\).*/\1/p' | head -n 1)
    [ -n "$kpkg" ] || die "no linux-image-X.Y package in the Depends of linux-image-amd64"
    say "fetching the kernel: apt-get download $kpkg (about 70 MB)"
    (cd "$cache/debs" && apt_get download "$kpkg")
    # Only the kernel image: the VM needs no modules (and they are 400 MB unpacked).
    kdeb=$(only_deb "$kpkg")
    dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$cache/kernel" --wildcards './boot/vmlinuz-*'
    cp "$cache"/kernel/boot/vmlinuz-* "$cache/vmlinuz.part"
    mv "$cache/vmlinuz.part" "$cache/vmlinuz"
fi
if [ ! -x "$cache/busybox" ]; then
    rm -rf "$cache/busybox-static"
    mkdir -p "$cache/debs"
    rm -f "$cache"/debs/busybox-static_*.deb
    say "fetching busybox: apt-get download busybox-static (into $cache/debs)"
    (cd "$cache/debs" && apt_get download busybox-static)
    bdeb=$(only_deb busybox-static)
    dpkg-deb -x "$bdeb" "$cache/busybox-static"
    cp "$cache/busybox-static/bin/busybox" "$cache/busybox.part"
    mv "$cache/busybox.part" "$cache/busybox"
fi
say "kernel: $(cd "$cache/kernel/boot" && echo vmlinuz-*); $("$cache/busybox" 2>&1 | sed -n 1p)"

# --- hakoniwa ---------------------------------------------------------------------------
say "building hakoniwa (cargo build --release)"
cargo build --release -q
[ -x "$bin" ] || die "cargo build did not produce $bin"

# --- the initramfs ----------------------------------------------------------------------
rm -rf "$work"
root=$work/initramfs
mkdir -p "$root"/{bin,dev,proc,sys,tmp,usr/local/bin}
chmod 1777 "$root/tmp"
cp "$cache/busybox" "$root/bin/busybox"
cp "$bin" "$root/bin/hakoniwa"
cp "$bin" "$root/usr/local/bin/hakoniwa"
cp tests/vm/checks.sh "$root/checks.sh"
# PID 1. The kernel opens /dev/console before running it, but the archive has no device
# nodes (making one needs root), so init reopens its streams once devtmpfs is mounted.
cat >"$root/init" <<'EOF'
#!/bin/busybox sh
# PID 1 of the VM of tests/vm/run.sh: mount what the checks need, run them, power off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t cgroup2 cgroup2 /sys/fs/cgroup
# Keep kernel messages (the OOM killer's, for one) from cutting into the checks' lines.
dmesg -n 1
echo "+memory +pids +cpu" >/sys/fs/cgroup/cgroup.subtree_control ||
    echo "INFO could not enable the memory, pids and cpu controllers (have: $(cat /sys/fs/cgroup/cgroup.controllers))"
echo
echo "VM-BOOTED after $(cut -d ' ' -f 1 /proc/uptime) s of uptime"
sh /checks.sh
poweroff -f
EOF
chmod 0755 "$root/init" "$root/checks.sh"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$work/initramfs.cpio"
say "initramfs: $work/initramfs.cpio ($(du -k "$work/initramfs.cpio" | cut -f 1) KiB)"

# --- boot ---------------------------------------------------------------------------
raw=$work/console.raw # the serial console as it comes
log=$work/console.log # the same as plain text
vm_pid=

# The console without carriage returns and the escape sequences of the BIOS, which would
# reset the terminal this prints to.
plain() {
    sed -u 's/\r$//; s/\x1bc//g; s/\x1b\[[0-9;?]*[A-Za-z]//g'
}

# start_vm SECONDS QEMU-OPTIONS...: start the VM in the background, for at most SECONDS.
# qemu runs in a subshell whose stderr is qemu.err, so that bash's own note when qemu aborts
# (it does when it cannot use the host's cpu) goes there too; $vm_pid is the subshell, and
# qemu.pid holds the pid of the `timeout` around qemu, which passes a SIGTERM on to qemu.
start_vm() {
    local limit=$1
    shift
    rm -f "$work/qemu.pid"
    (
        timeout "$limit" qemu-system-x86_64 "$@" -m 512M -smp 2 -nographic -no-reboot -nic none \
            -kernel "$cache/vmlinuz" -initrd "$work/initramfs.cpio" \
            -append 'console=ttyS0 panic=-1 quiet' &
        echo $! >"$work/qemu.pid"
        wait $!
    ) </dev/null >"$raw" 2>"$work/qemu.err" &
    vm_pid=$!
}

stop_vm() {
    if [ -n "$vm_pid" ]; then
        kill "$(cat "$work/qemu.pid" 2>/dev/null)" 2>/dev/null || true
        wait "$vm_pid" 2>/dev/null || true
        vm_pid=
    fi
}
trap stop_vm EXIT
trap 'stop_vm; exit 130' INT TERM

# booted_within SECONDS: whether init's first line comes in time (false once qemu is gone).
booted_within() {
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        grep -q 'VM-BOOTED' "$raw" && return 0
        kill -0 "$vm_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

vm_started=$(now)
vm_t0=$SECONDS
accel=
# A stock kernel boots to init in a few seconds with KVM. A /dev/kvm that opens may still
# not run it: qemu may refuse the host's cpu, or the module may be one (such as kvm_pvm)
# that runs only guests built for it; then the kernel never gets to init, and TCG takes over.
if { [ -c /dev/kvm ] && : <>/dev/kvm; } 2>/dev/null; then
    say "booting with KVM (console log: $log)"
    start_vm "$vm_timeout" -enable-kvm -cpu host
    if booted_within 15; then
        accel=KVM
    else
        reason=$(sed -n 's/^qemu-system-x86_64: //p' "$work/qemu.err" | head -n 1)
        stop_vm
        say "KVM did not boot the kernel (${reason:-no sign of init after 15 s}); falling back to TCG"
    fi
else
    say "/dev/kvm is missing or cannot be opened: booting with TCG, which is slower"
fi
if [ -z "$accel" ]; then
    accel=TCG
    # What is left of the time limit: the whole run stays within it.
    start_vm $((vm_timeout - (SECONDS - vm_t0))) -cpu max
fi
tail -s 0.2 -n +1 -f --pid="$vm_pid" "$raw" | plain |
    grep --line-buffered -E '^(PASS|FAIL|SKIP|INFO|VM-BOOTED) ' || true
set +e
wait "$vm_pid"
qemu_status=$?
set -e
vm_pid=
plain <"$raw" >"$log"
vm_time=$(since "$vm_started")

# --- results ------------------------------------------------------------------------
passed=$(grep -c '^PASS ' "$log" || true)
failed=$(grep -c '^FAIL ' "$log" || true)
skipped=$(grep -c '^SKIP ' "$log" || true)
done_marker=no
grep -qx 'VM-CHECKS-DONE' "$log" && done_marker=yes

if [ "$done_marker" = no ]; then
    if [ "$qemu_status" = 124 ]; then
        say "the VM did not finish within ${vm_timeout} s"
    else
        say "the VM stopped before the end of the checks (qemu exit status $qemu_status)"
    fi
    [ -s "$work/qemu.err" ] && sed 's/^/qemu: /' "$work/qemu.err"
    say "last lines of the console:"
    tail -n 20 "$log" | sed 's/^/    /'
fi
say "$passed passed, $failed failed, $skipped skipped; VM ${vm_time} s ($accel), total $(since "$started") s"
if [ "$done_marker" = yes ] && [ "$failed" = 0 ] && [ "$passed" -gt 0 ]; then
    say "all checks passed"
    exit 0
fi
say "FAILED (console log: $log)"
exit 1
