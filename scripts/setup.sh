#!/usr/bin/env bash
# Installs what vmpool needs on a fresh Debian/Ubuntu machine: QEMU
# (qemu-system-x86 and qemu-utils) with apt-get when run as root, and
# checks for Go. Sourced by demo.sh and test.sh; safe to run again.
set -euo pipefail

need_go() {
	if ! command -v go >/dev/null 2>&1; then
		if [ -x /usr/local/go/bin/go ]; then
			export PATH="/usr/local/go/bin:$PATH"
		else
			echo "vmpool setup: Go is not installed. Install Go 1.25 or newer (https://go.dev/dl/) and run this again." >&2
			exit 1
		fi
	fi
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

need_go
need_qemu
