package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluicehq/sluice/invoker"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sluice test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func TestServeTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	echo := startFunction(t, "echo", builtinHandler(t, "echo"), invoker.Config{}, nil)
	s, err := New(Config{MaxBody: 1024, TLS: &tls.Config{Certificates: []tls.Certificate{cert}}},
		[]Route{{Method: "POST", Path: "/echo", Function: echo}}, Deps{Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	url := "https://" + ln.Addr().String() + "/echo"

	resp, body := do(t, c, "POST", url, `{"a":1}`, map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("status %d, tls %v: %s", resp.StatusCode, resp.TLS != nil, body)
	}
	if _, req := decodeEcho(t, body); req.Headers["x-forwarded-proto"] != "https" {
		t.Fatalf("x-forwarded-proto = %q, want https", req.Headers["x-forwarded-proto"])
	}
	resp, body = do(t, c, "POST", url, strings.Repeat("x", 1<<20), nil)
	checkError(t, resp, body, 413, msgTooLarge)
}
