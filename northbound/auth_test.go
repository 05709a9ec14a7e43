package northbound

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/brtun/brtun/topology"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

const testToken = "s3cret-token-0123456789"

// newAuthServer serves the API over a memory store behind RequireToken.
func newAuthServer(t *testing.T, o AuthOptions) string {
	t.Helper()
	store := topology.NewMemoryStore()
	t.Cleanup(func() { _ = store.Close() })
	api, err := New(Options{Store: store, Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
	o.Logger = zaptest.NewLogger(t)
	srv := httptest.NewServer(RequireToken(o)(api))
	t.Cleanup(srv.Close)
	return srv.URL
}

// send makes a request with an optional Authorization header value.
func send(t *testing.T, method, url, body, authorization string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return response{status: res.StatusCode, header: res.Header, body: raw}
}

func requireUnauthorized(t *testing.T, r response, what string) {
	t.Helper()
	require.Equal(t, http.StatusUnauthorized, r.status, "%s: %s", what, r.body)
	assert.Equal(t, codeUnauthorized, r.errorCode(t), what)
	assert.Equal(t, "application/json", r.header.Get("Content-Type"), what)
	assert.Equal(t, `Bearer realm="brtun"`, r.header.Get("WWW-Authenticate"), what)
}

func TestRequireToken(t *testing.T) {
	url := newAuthServer(t, AuthOptions{Token: testToken})
	const net = `{"name":"blue","type":"vxlan","segment_id":5001}`
	bearer := "Bearer " + testToken

	for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Basic " + testToken, "Bearer", testToken,
		"Bearer " + testToken + "x", "Bearer " + testToken[:len(testToken)-1]} {
		requireUnauthorized(t, send(t, "POST", url+"/v1/networks", net, auth), "write with Authorization "+auth)
		requireUnauthorized(t, send(t, "GET", url+"/v1/networks", "", auth), "read with Authorization "+auth)
		requireUnauthorized(t, send(t, "GET", url+"/v1/nope", "", auth), "unknown path with Authorization "+auth)
	}
	assert.Equal(t, http.StatusNotFound, send(t, "GET", url+"/v1/networks/blue", "", bearer).status,
		"the refused write stored nothing")

	// Positive controls: the right token reads and writes; the scheme is case-insensitive.
	require.Equal(t, http.StatusCreated, send(t, "POST", url+"/v1/networks", net, bearer).status)
	r := send(t, "GET", url+"/v1/networks/blue", "", "bearer "+testToken)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, "blue", r.json(t)["name"])

	for _, method := range []string{"GET", "HEAD"} {
		assert.Equal(t, http.StatusOK, send(t, method, url+HealthPath, "", "").status, "%s %s needs no token", method, HealthPath)
	}
}

func TestRequireTokenReadOpen(t *testing.T) {
	url := newAuthServer(t, AuthOptions{Token: testToken, ReadOpen: true})
	const net = `{"name":"blue","type":"vxlan","segment_id":5001}`

	r := send(t, "GET", url+"/v1/networks", "", "")
	require.Equal(t, http.StatusOK, r.status, "reads are open: %s", r.body)
	requireUnauthorized(t, send(t, "POST", url+"/v1/networks", net, ""), "a write without a token")
	requireUnauthorized(t, send(t, "DELETE", url+"/v1/networks/blue", "", "Bearer wrong-token-0123456789"), "a delete with a wrong token")
	require.Equal(t, http.StatusCreated, send(t, "POST", url+"/v1/networks", net, "Bearer "+testToken).status)
	require.Equal(t, http.StatusOK, send(t, "GET", url+"/v1/networks/blue", "", "").status)
}

func TestRequireTokenWithoutTokenIsOpen(t *testing.T) {
	url := newAuthServer(t, AuthOptions{})
	require.Equal(t, http.StatusCreated, send(t, "POST", url+"/v1/networks", `{"name":"blue","type":"vxlan"}`, "").status)
	require.Equal(t, http.StatusOK, send(t, "GET", url+"/v1/networks/blue", "", "Bearer anything").status)
}

func TestReadTokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	got, err := ReadTokenFile(write("ok", "  "+testToken+"\n"))
	require.NoError(t, err)
	assert.Equal(t, testToken, got)

	for name, content := range map[string]string{
		"empty": "\n", "short": "abc\n", "space": "abcdefgh ijklmnopq\n", "lines": "abcdefghij\nklmnopqrst\n",
		"nonascii": "abcdefghijklmnopé\n",
	} {
		_, err := ReadTokenFile(write(name, content))
		assert.Error(t, err, name)
	}
	_, err = ReadTokenFile(filepath.Join(dir, "missing"))
	assert.ErrorContains(t, err, "read token file")
}

// TestOpenAPIDeclaresBearerAuth: the document declares the bearer scheme
// for everything but /healthz, each protected operation lists the 401, and
// the router behind RequireToken refuses exactly those operations.
func TestOpenAPIDeclaresBearerAuth(t *testing.T) {
	doc := loadOpenAPI(t)
	scheme := obj(t, obj(t, obj(t, doc, "components"), "securitySchemes"), "bearerAuth")
	assert.Equal(t, "http", scheme["type"])
	assert.Equal(t, "bearer", scheme["scheme"])
	raw, err := json.Marshal(doc["security"])
	require.NoError(t, err)
	assert.JSONEq(t, `[{"bearerAuth":[]}]`, string(raw), "the whole API needs the token by default")

	url := newAuthServer(t, AuthOptions{Token: testToken})
	paths := obj(t, doc, "paths")
	vars := regexp.MustCompile(`\{[^}]+\}`)
	for _, route := range routerRoutes(t) {
		method, path, _ := strings.Cut(route, " ")
		op := obj(t, obj(t, paths, path), strings.ToLower(method))
		_, has401 := obj(t, op, "responses")["401"]
		r := send(t, method, url+vars.ReplaceAllString(path, "x"), "", "")
		if path == HealthPath {
			sec, ok := op["security"].([]any)
			assert.True(t, ok && len(sec) == 0, "%s: declares no security", route)
			assert.False(t, has401, "%s: lists no 401", route)
			assert.Equal(t, http.StatusOK, r.status, "%s is open", route)
			continue
		}
		assert.NotContains(t, op, "security", "%s: inherits the document's security", route)
		assert.True(t, has401, "%s: lists the 401", route)
		assert.Equal(t, http.StatusUnauthorized, r.status, "%s without a token", route)
	}
}
