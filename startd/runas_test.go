package startd

import (
	"fmt"
	"os"
	"os/user"
	"strings"
	"testing"

	"github.com/vmpool/vmpool/startd/hypervisor"
)

// TestRunAs: a root startd runs a VM as its owner's account when it
// exists and is not root, else as the nobody account; a startd that is
// not root runs it as itself.
func TestRunAs(t *testing.T) {
	d := &Startd{cfg: Config{NobodyUser: "nobody"}}
	if os.Geteuid() != 0 {
		a, err := d.runAs("daemon")
		if err != nil || a != nil {
			t.Fatalf("not root: runAs gave %+v, %v; want none", a, err)
		}
		return
	}
	for _, c := range []struct {
		owner, want string
		nobody      bool
	}{
		{"daemon", "daemon", false},
		{"root", "nobody", false},
		{"no-such-user-here", "nobody", false},
		{"daemon", "nobody", true},
	} {
		d.cfg.AlwaysUseNobody = c.nobody
		a, err := d.runAs(c.owner)
		if err != nil {
			t.Fatalf("runAs(%q): %v", c.owner, err)
		}
		if a == nil || a.Name != c.want {
			t.Fatalf("runAs(%q), always nobody %v: %+v, want %s", c.owner, c.nobody, a, c.want)
		}
		u, err := user.Lookup(a.Name)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(a.UID) != u.Uid || fmt.Sprint(a.GID) != u.Gid {
			t.Fatalf("%s's ids: %d/%d, want %s/%s", a.Name, a.UID, a.GID, u.Uid, u.Gid)
		}
	}
	d.cfg.AlwaysUseNobody, d.cfg.NobodyUser = false, "no-such-user-here"
	if _, err := d.runAs("root"); err == nil {
		t.Fatal("a nobody account that does not exist: no error")
	}
}

// TestLookupAccountCaches: an account is looked up once per accountTTL,
// a missing one too, and looked up again after it.
func TestLookupAccountCaches(t *testing.T) {
	a, err := lookupAccount("root")
	if err != nil || a.Uid != "0" {
		t.Fatalf("root: %+v, %v", a, err)
	}
	if b, _ := lookupAccount("root"); b != a {
		t.Fatal("looked up again within its lifetime")
	}
	if _, err := lookupAccount("no-such-user-here"); err == nil {
		t.Fatal("a missing account: no error")
	}
	accounts.mu.Lock()
	e := accounts.m["root"]
	e.at = e.at.Add(-accountTTL)
	accounts.m["root"] = e
	_, missing := accounts.m["no-such-user-here"]
	accounts.mu.Unlock()
	if !missing {
		t.Fatal("a missing account is not cached")
	}
	if b, err := lookupAccount("root"); err != nil || b == a || b.Uid != "0" {
		t.Fatalf("after its lifetime: %+v (first %p, now %p), %v", b, a, b, err)
	}
}

// TestHoldSubcodesAreDistinct: a hold for one of the drivers' VMGAHP
// errors carries a subcode of its own. Only JOBCLASSAD_NO_VM_MEMORY_PARAM
// is HTCondor's subcode 0; a .vmx the vmware driver refuses used to be
// held with subcode 0 too, which a periodic_release on HoldReasonSubCode
// takes for a job without vm_memory.
func TestHoldSubcodesAreDistinct(t *testing.T) {
	codes := []string{"VMWARE_VMX_ERROR", "VMWARE_MISMATCHED_CHECKPOINT", "KVM_INVALID_NETWORK_PARAM",
		"XEN_INVALID_NETWORK_PARAM", "VMWARE_INVALID_NETWORK_PARAM", "INVALID_NAME"}
	seen := map[int]string{}
	for _, c := range codes {
		p := failure("Error from slot1@s1: ", &hypervisor.SpecError{Code: c, Msg: "m"})
		if !p.Hold || p.Code != holdFailedToCreate || p.SubCode == 0 {
			t.Errorf("%s: hold %+v; want code 6 with a subcode other than JOBCLASSAD_NO_VM_MEMORY_PARAM's 0", c, p)
		}
		if other, dup := seen[p.SubCode]; dup && !strings.HasSuffix(c, "_INVALID_NETWORK_PARAM") {
			t.Errorf("%s and %s share subcode %d", c, other, p.SubCode)
		}
		seen[p.SubCode] = c
	}
}

// TestHoldReasonNamesHTCondorsError: a hold's reason names the error as
// HTCondor's starter does (REFERENCE.md: "Error from slot1@exec09:
// VMGAHP_ERR_JOBCLASSAD_KVM_INVALID_DISK_PARAM"), so that a
// periodic_release or a script matching HTCondor's text matches vmpool's.
func TestHoldReasonNamesHTCondorsError(t *testing.T) {
	for code, want := range map[string]string{
		"KVM_INVALID_DISK_PARAM":        "VMGAHP_ERR_JOBCLASSAD_KVM_INVALID_DISK_PARAM: ",
		"XEN_KERNEL_NOT_FOUND":          "VMGAHP_ERR_JOBCLASSAD_XEN_KERNEL_NOT_FOUND: ",
		"XEN_MISMATCHED_CHECKPOINT":     "VMGAHP_ERR_JOBCLASSAD_XEN_MISMATCHED_CHECKPOINT: ",
		"NO_VMWARE_VMX_PARAM":           "VMGAHP_ERR_JOBCLASSAD_NO_VMWARE_VMX_PARAM: ",
		"JOBCLASSAD_NO_VM_MEMORY_PARAM": "VMGAHP_ERR_JOBCLASSAD_NO_VM_MEMORY_PARAM: ",
		"BAD_IMAGE":                     "VMGAHP_ERR_BAD_IMAGE: ",
	} {
		p := failure("Error from slot1@s1: ", &hypervisor.SpecError{Code: code, Msg: "m"})
		if p.Reason != "Error from slot1@s1: "+want+"m" {
			t.Errorf("%s: reason %q, want %q", code, p.Reason, "Error from slot1@s1: "+want+"m")
		}
	}
}
