#!/usr/bin/env bash
# Installs what vmpool needs on a fresh Debian/Ubuntu machine with apt-get
# when run as root: QEMU (qemu-system-x86 and qemu-utils); the parts of
# the Linux test guest (vmimage/linux), Debian's kernel
# (linux-image-cloud-amd64) and a static busybox (busybox-static); and
# iproute2 for the bridged networking tests. Checks for Go. Sourced by
# demo.sh and test.sh; safe to run again.
set -euo pipefail

need_go() {
	if ! command -v go >/dev/null 2>&1; then
		if [ -x /usr/local/go/bin/go ]; then
			export PATH="/usr/local/go/bin:$PATH"
		else
			echo "vmpool setup: Go is not installed. Install Go 1.26 or newer (https://go.dev/dl/) and run this again." >&2
			exit 1
		fi
	fi
	# go.mod asks for 1.26; an older go would try to download a newer
	# toolchain, which fails without network.
	local v
	v="$(go env GOVERSION 2>/dev/null | sed 's/^go//')"
	case "$v" in
	1.2[6-9]* | 1.[3-9][0-9]* | [2-9].*) ;;
	*)
		echo "vmpool setup: Go ${v:-?} is too old: vmpool needs Go 1.26 or newer (https://go.dev/dl/)." >&2
		exit 1
		;;
	esac
}

need_qemu() {
	local missing=()
	command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
	command -v qemu-img >/dev/null 2>&1 || missing+=(qemu-utils)
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "vmpool setup: installing ${missing[*]} with apt-get..." >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
			|| { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
	else
		echo "vmpool setup: QEMU is missing (${missing[*]}). Install it as root:" >&2
		echo "    sudo apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
}

apt_install() {
	echo "vmpool setup: installing $* with apt-get..." >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null \
		|| { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null; }
}

# have_kernel: a kernel in /boot whose modules are installed, as the
# Linux guest needs (linux.FindKernel).
have_kernel() {
	local k
	for k in /boot/vmlinuz-*; do
		[ -f "$k" ] && [ -f "/lib/modules/${k#/boot/vmlinuz-}/modules.dep" ] && return 0
	done
	return 1
}

# have_static_busybox: Debian's busybox-static (the guest has no libc, so
# the dynamically linked "busybox" package will not do).
have_static_busybox() {
	if command -v dpkg-query >/dev/null 2>&1; then
		dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed"
	else
		[ -x /bin/busybox ]
	fi
}

# need_linux_guest installs the parts of the Linux test guest and iproute2.
# Without root it only says what is missing: the demo does not need them,
# and the tests that do fail saying what to install.
need_linux_guest() {
	local missing=()
	have_kernel || missing+=(linux-image-cloud-amd64)
	have_static_busybox || missing+=(busybox-static)
	command -v ip >/dev/null 2>&1 || missing+=(iproute2)
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		apt_install "${missing[@]}"
	else
		echo "vmpool setup: the Linux guest tests need ${missing[*]}; install them as root:" >&2
		echo "    sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
	fi
}

need_go
need_qemu
need_linux_guest
