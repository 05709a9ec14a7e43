package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/brtun/brtun/northbound"
	"github.com/brtun/brtun/ofswitch"
	"github.com/brtun/brtun/topology"
)

const cliTestToken = "cli-test-token-0123456789"

// newAuthCLIServer serves the API behind a token; tlsOn serves HTTPS.
func newAuthCLIServer(t *testing.T, tlsOn bool) *httptest.Server {
	t.Helper()
	store := topology.NewMemoryStore()
	t.Cleanup(func() { _ = store.Close() })
	api, err := northbound.New(northbound.Options{Store: store, Controller: &cliController{}})
	require.NoError(t, err)
	h := northbound.RequireToken(northbound.AuthOptions{Token: cliTestToken})(api)
	srv := httptest.NewUnstartedServer(h)
	if tlsOn {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func TestCLITokenFile(t *testing.T) {
	srv := newAuthCLIServer(t, false)
	s := "--server=" + srv.URL
	good := writeFile(t, "token", cliTestToken+"\n")
	bad := writeFile(t, "bad", "not-the-token-0123456789\n")

	_, _, err := run(t, s, "net", "list")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 401 unauthorized")
	_, _, err = run(t, s, "--token-file", bad, "net", "create", "blue", "--type", "vxlan")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 401 unauthorized")
	_, _, err = run(t, s, "--token-file", filepath.Join(t.TempDir(), "missing"), "net", "list")
	require.ErrorContains(t, err, "--token-file")

	mustRun(t, s, "--token-file", good, "net", "create", "blue", "--type", "vxlan")
	t.Setenv("BRTUN_TOKEN_FILE", good)
	assert.Contains(t, mustRun(t, s, "net", "list"), "blue", "BRTUN_TOKEN_FILE is read")
	_, _, err = run(t, s, "--token-file", bad, "net", "list")
	require.Error(t, err, "the flag wins over BRTUN_TOKEN_FILE")
}

func TestCLICAFile(t *testing.T) {
	srv := newAuthCLIServer(t, true)
	s := "--server=" + srv.URL
	token := "--token-file=" + writeFile(t, "token", cliTestToken)
	ca := writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))

	_, _, err := run(t, s, token, "net", "list")
	require.Error(t, err, "the test server's certificate is not in the system's pool")
	assert.Contains(t, err.Error(), "certificate")
	_, _, err = run(t, s, token, "--ca-file", writeFile(t, "junk.pem", "junk"), "net", "list")
	require.ErrorContains(t, err, "holds no PEM certificate")

	assert.Regexp(t, `^NAME\s+TYPE`, mustRun(t, s, token, "--ca-file", ca, "net", "list"))
}

// writePKI writes a CA and a certificate it signed, as PEM files in dir.
func writePKI(t *testing.T, dir string) ofswitch.TLSFiles {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "brtun"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caTmpl, &key.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	f := ofswitch.TLSFiles{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), CAFile: filepath.Join(dir, "ca.pem")}
	for path, b := range map[string]*pem.Block{
		f.CAFile: {Type: "CERTIFICATE", Bytes: caDER}, f.CertFile: {Type: "CERTIFICATE", Bytes: der},
		f.KeyFile: {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(b), 0o600))
	}
	return f
}

func TestServeSecurityFlags(t *testing.T) {
	t.Setenv("CREDENTIALS_DIRECTORY", "") // no systemd credential here
	pki := writePKI(t, t.TempDir())
	token := writeFile(t, "token", cliTestToken)
	const tcp, ssl = "tcp:127.0.0.1:6653", "ssl:127.0.0.1:6653"

	s, err := securityOptions{}.load(tcp)
	require.NoError(t, err)
	assert.Equal(t, security{}, s, "no flags: open API, plain HTTP, tcp: OpenFlow")

	viewer := writeFile(t, "viewer", "viewer-"+cliTestToken)
	s, err = securityOptions{apiTokenFile: token, apiViewerTokenFile: viewer}.load(tcp)
	require.NoError(t, err)
	assert.Equal(t, cliTestToken, s.apiToken)
	assert.Equal(t, "viewer-"+cliTestToken, s.apiViewerToken)

	s, err = securityOptions{
		apiTokenFile: token, apiReadOpen: true,
		apiTLS:      ofswitch.TLSFiles{CertFile: pki.CertFile, KeyFile: pki.KeyFile},
		openflowTLS: pki, ovsdbTLS: pki,
	}.load(ssl)
	require.NoError(t, err)
	assert.Equal(t, cliTestToken, s.apiToken)
	assert.True(t, s.apiReadOpen)
	require.NotNil(t, s.apiTLS)
	assert.Len(t, s.apiTLS.Certificates, 1)
	require.NotNil(t, s.openflowTLS)
	assert.NotNil(t, s.openflowTLS.ClientCAs, "switches are checked against --openflow-tls-ca")
	require.NotNil(t, s.ovsdbTLS)
	assert.Len(t, s.ovsdbTLS.Certificates, 1)

	for name, tc := range map[string]struct {
		o      securityOptions
		listen string
		want   string
	}{
		"read open without token": {securityOptions{apiReadOpen: true}, tcp, "--api-read-open needs an API token"},
		"viewer without token":    {securityOptions{apiViewerTokenFile: token}, tcp, "--api-viewer-token-file needs an API token"},
		"viewer same as token":    {securityOptions{apiTokenFile: token, apiViewerTokenFile: writeFile(t, "same", cliTestToken+"\n")}, tcp, "must differ"},
		"short viewer token":      {securityOptions{apiTokenFile: token, apiViewerTokenFile: writeFile(t, "vshort", "abc")}, tcp, "--api-viewer-token-file: "},
		"short token":             {securityOptions{apiTokenFile: writeFile(t, "short", "abc")}, tcp, "at least 16"},
		"api cert without key":    {securityOptions{apiTLS: ofswitch.TLSFiles{CertFile: pki.CertFile}}, tcp, "go together"},
		"api key mismatch":        {securityOptions{apiTLS: ofswitch.TLSFiles{CertFile: pki.CAFile, KeyFile: pki.KeyFile}}, tcp, "--api-tls-cert"},
		"ssl without files":       {securityOptions{}, ssl, "needs --openflow-tls-cert"},
		"ssl without ca":          {securityOptions{openflowTLS: ofswitch.TLSFiles{CertFile: pki.CertFile, KeyFile: pki.KeyFile}}, ssl, "needs --openflow-tls-cert"},
		"files with tcp":          {securityOptions{openflowTLS: pki}, tcp, "need an ssl: --openflow-listen"},
		"bad openflow ca":         {securityOptions{openflowTLS: ofswitch.TLSFiles{CertFile: pki.CertFile, KeyFile: pki.KeyFile, CAFile: token}}, ssl, "holds no PEM"},
		"ovsdb partial":           {securityOptions{ovsdbTLS: ofswitch.TLSFiles{CAFile: pki.CAFile}}, tcp, "go together"},
	} {
		_, err := tc.o.load(tc.listen)
		assert.ErrorContains(t, err, tc.want, name)
	}
}

func TestServeSecurityWarnings(t *testing.T) {
	warnings := func(s security, listen string) []string {
		core, logs := observer.New(zap.WarnLevel)
		s.warn(zap.New(core), listen)
		var out []string
		for _, e := range logs.All() {
			out = append(out, e.Message)
		}
		return out
	}
	open := warnings(security{}, "127.0.0.1:8080")
	require.Len(t, open, 1)
	assert.Contains(t, open[0], "the REST API is open")
	clear := warnings(security{apiToken: cliTestToken}, "198.51.100.254:8080")
	require.Len(t, clear, 1)
	assert.Contains(t, clear[0], "clear text")
	assert.Empty(t, warnings(security{apiToken: cliTestToken}, "127.0.0.1:8080"), "a token on loopback")
	assert.Empty(t, warnings(security{apiToken: cliTestToken}, "[::1]:8080"), "a token on loopback")
}
