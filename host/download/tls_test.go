package download

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func certPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// issue makes a certificate for tmpl signed by parent (self-signed when
// parent is nil) and returns it with its PEM key.
func issue(t *testing.T, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

func tlsServer(t *testing.T, b []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(serve(b))
	t.Cleanup(srv.Close)
	return srv
}

func TestTLSValidation(t *testing.T) {
	t.Parallel()
	b := body(4096)
	srv := tlsServer(t, b)
	ca := certPEM(srv.Certificate())
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"validation off accepts self-signed", Config{TLSValidation: false}, true},
		{"validation on rejects unknown CA", Config{TLSValidation: true}, false},
		{"validation on with ca_cert", Config{TLSValidation: true, CACert: ca}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newD(t, tt.cfg, WithBackoff(time.Second, time.Second))
			var buf bytes.Buffer
			start := time.Now()
			_, err := d.Fetch(t.Context(), Request{URL: srv.URL + "/f", Expected: Expect{Size: 4096}}, &buf)
			if tt.ok && (err != nil || !bytes.Equal(buf.Bytes(), b)) {
				t.Fatalf("err = %v", err)
			}
			var cv *tls.CertificateVerificationError
			if !tt.ok && (!errors.As(err, &cv) || time.Since(start) > 500*time.Millisecond) {
				t.Fatalf("err = %v after %s; want a certificate error at once, unretried", err, time.Since(start))
			}
		})
	}
}

func TestClientCert(t *testing.T) {
	t.Parallel()
	caCert, caKey, _ := issue(t, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}, nil, nil)
	client, _, clientKey := issue(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "pulpo"}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}, caCert, caKey)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := certPEM(srv.Certificate())

	d := newD(t, Config{TLSValidation: true, CACert: ca, ClientCert: certPEM(client), ClientKey: clientKey})
	var buf bytes.Buffer
	if _, err := d.Fetch(t.Context(), Request{URL: srv.URL}, &buf); err != nil || buf.String() != "pulpo" {
		t.Fatalf("err = %v, body %q", err, buf.String())
	}
	// Without a client certificate the server refuses; the TLS alert is final.
	d = newD(t, Config{TLSValidation: true, CACert: ca}, WithBackoff(time.Second, time.Second))
	start := time.Now()
	if _, err := d.Fetch(t.Context(), Request{URL: srv.URL}, io.Discard); err == nil || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("no client cert: err = %v after %s", err, time.Since(start))
	}
}

// proxy is an HTTP proxy that wants Basic user:pass. It answers plain
// requests itself, naming the absolute URL, and tunnels CONNECT.
func proxy(t *testing.T, user, pass string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Proxy-Authorization") != want {
			w.Header().Set("Proxy-Authenticate", `Basic realm="proxy"`)
			w.WriteHeader(http.StatusProxyAuthRequired)
			return
		}
		hits.Add(1)
		if r.Method != http.MethodConnect {
			if !r.URL.IsAbs() {
				http.Error(w, "not a proxy request", http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "proxied %s", r.URL)
			return
		}
		dst, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer dst.Close()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() { io.Copy(dst, conn); dst.Close() }()
		io.Copy(conn, dst)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestProxy(t *testing.T) {
	t.Parallel()
	p, hits := proxy(t, "puser", "ppass")
	d := newD(t, Config{ProxyURL: p.URL, ProxyUsername: "puser", ProxyPassword: "ppass"})
	var buf bytes.Buffer
	if _, err := d.Fetch(t.Context(), Request{URL: "http://upstream.invalid/PULP_MANIFEST"}, &buf); err != nil ||
		buf.String() != "proxied http://upstream.invalid/PULP_MANIFEST" {
		t.Fatalf("err = %v, body %q", err, buf.String())
	}

	// https through CONNECT, with the upstream's CA.
	b := body(10000)
	up := tlsServer(t, b)
	d = newD(t, Config{ProxyURL: p.URL, ProxyUsername: "puser", ProxyPassword: "ppass", TLSValidation: true,
		CACert: certPEM(up.Certificate())})
	buf.Reset()
	if _, err := d.Fetch(t.Context(), Request{URL: up.URL + "/x", Expected: Expect{Size: 10000}}, &buf); err != nil ||
		!bytes.Equal(buf.Bytes(), b) {
		t.Fatalf("CONNECT: err = %v", err)
	}
	if hits.Load() != 2 {
		t.Fatalf("proxy saw %d authorized requests, want 2", hits.Load())
	}

	// Wrong proxy password: 407 is final and the password is not shown.
	d = newD(t, Config{ProxyURL: p.URL, ProxyUsername: "puser", ProxyPassword: "wrong-pw"})
	_, err := d.Fetch(t.Context(), Request{URL: "http://upstream.invalid/x"}, io.Discard)
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusProxyAuthRequired || strings.Contains(err.Error(), "wrong-pw") {
		t.Fatalf("err = %v, want HTTP 407", err)
	}
}

func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	// A listener that accepts and never speaks: the TLS handshake hangs.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	d := newD(t, Config{ConnectTimeout: 150 * time.Millisecond, MaxRetries: intp(1)})
	start := time.Now()
	_, err = d.Fetch(t.Context(), Request{URL: "https://" + ln.Addr().String() + "/x"}, io.Discard)
	var te *TimeoutError
	if !errors.As(err, &te) || te.Phase != "connect_timeout" || time.Since(start) > 2*time.Second {
		t.Fatalf("err = %v after %s, want connect_timeout", err, time.Since(start))
	}
}
