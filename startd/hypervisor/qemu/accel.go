package qemu

import (
	"fmt"
	"os"
)

// Accelerators the driver knows. AccelAuto ("" in Config) picks one with
// ChooseAccel.
const (
	AccelAuto = "auto"
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
)

// pvmModule is present when /dev/kvm is served by PVM (kvm_pvm), the
// shadow-paging hypervisor some cloud sandboxes give nested guests in place
// of hardware virtualisation. PVM runs only guest kernels built for it: a
// stock Linux kernel stops at its first emulated instruction with "KVM
// internal error. Suberror: 1", and even a boot sector takes seconds.
const pvmModule = "/sys/module/kvm_pvm"

// ChooseAccel returns the accelerator the automatic choice makes on this
// host, and why: kvm when /dev/kvm opens for reading and writing and is
// backed by hardware virtualisation, tcg otherwise. It reads the file
// system only; it starts nothing.
func ChooseAccel() (accel, why string) { return chooseAccel("/dev/kvm", pvmModule) }

func chooseAccel(dev, pvm string) (accel, why string) {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return AccelTCG, fmt.Sprintf("%s is not usable (%v)", dev, err)
	}
	f.Close()
	if _, err := os.Stat(pvm); err == nil {
		return AccelTCG, dev + " is PVM (kvm_pvm), which boots only PVM guest kernels; set QEMU_ACCEL = kvm to use it anyway"
	}
	return AccelKVM, dev + " is usable"
}

// kvmUsable reports whether /dev/kvm can be opened for reading and writing.
func kvmUsable() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}
