package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/vmimage"
)

// writeTestPKI writes a CA and a certificate for 127.0.0.1 signed by it,
// as PEM files in dir, and returns their paths.
func writeTestPKI(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vmpool test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server-key.pem", "EC PRIVATE KEY", keyDER)
}

// TestTLSPool: with NATS_TLS_CERT/KEY the pool's NATS server speaks only
// TLS; its daemons trust it through NATS_TLS_CA, a user through
// $VMPOOL_TLS_CA, and a client that does not trust the certificate is told
// so and what to set.
func TestTLSPool(t *testing.T) {
	ca, cert, key := writeTestPKI(t, t.TempDir())
	tp := newTestPool(t, 1, "NATS_TLS_CERT="+cert, "NATS_TLS_KEY="+key, "NATS_TLS_CA="+ca)
	if !strings.HasPrefix(tp.URL, "tls://") {
		t.Fatalf("pool URL %s, want tls://", tp.URL)
	}
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	sub := tp.write("hello.sub", helloSub)

	// Without the CA: refused with the remedy, nothing queued.
	tp.envs = map[string]string{"VMPOOL_URL": strings.Replace(tp.URL, "tls://", "nats://", 1)}
	_, errOut, code := tp.vmpool("submit", sub)
	if code == 0 || !strings.Contains(errOut, "does not trust") || !strings.Contains(errOut, "VMPOOL_TLS_CA") {
		t.Fatalf("submit without the CA: exit %d: %s", code, errOut)
	}

	tp.envs = map[string]string{"VMPOOL_TLS_CA": ca}
	tp.mustRun("submit", sub)
	tp.jobEvent(1, 0, events.JobCompleted, 60*time.Second)
	if got := readCounter(t, filepath.Join(tp.dir, "hello.img")); got != 1 {
		t.Fatalf("returned disk counter %d, want 1", got)
	}
	if h := tp.mustRun("history", "-af", "ClusterId", "JobStatus"); h != "1 4\n" {
		t.Fatalf("history %q", h)
	}
}
