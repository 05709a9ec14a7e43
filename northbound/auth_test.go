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

const viewerToken = "viewer-token-0123456789"

// TestRequireTokenViewer: beside the full token, which reads and writes, the
// viewer token reads and is refused every write with 403 forbidden.
func TestRequireTokenViewer(t *testing.T) {
	url := newAuthServer(t, AuthOptions{Token: testToken, ViewerToken: viewerToken})
	const net = `{"name":"blue","type":"vxlan","segment_id":5001}`
	full, viewer := "Bearer "+testToken, "Bearer "+viewerToken

	// The full token writes.
	require.Equal(t, http.StatusCreated, send(t, "POST", url+"/v1/networks", net, full).status)

	// The viewer token reads.
	r := send(t, "GET", url+"/v1/networks/blue", "", viewer)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, "blue", r.json(t)["name"])
	assert.Equal(t, http.StatusOK, send(t, "GET", url+"/v1/networks", "", viewer).status)
	assert.Equal(t, http.StatusNotFound, send(t, "GET", url+"/v1/networks/red", "", viewer).status,
		"a read of a missing object reaches the API")

	// Every write with the viewer token is refused with 403, and changes nothing.
	for _, w := range []struct{ method, path, body string }{
		{"POST", "/v1/networks", `{"name":"red","type":"gre"}`},
		{"PATCH", "/v1/networks/blue", `{"mac_learning":false}`},
		{"DELETE", "/v1/networks/blue", ""},
		{"POST", "/v1/hosts", `{"name":"h1","ovsdb":"tcp:198.51.100.1:6640","tunnel_ip":"192.0.2.1"}`},
		{"PUT", "/v1/networks/blue/ports/p1", `{"host":"h1"}`},
	} {
		r := send(t, w.method, url+w.path, w.body, viewer)
		require.Equal(t, http.StatusForbidden, r.status, "%s %s with the viewer token: %s", w.method, w.path, r.body)
		assert.Equal(t, codeForbidden, r.errorCode(t))
		assert.Contains(t, string(r.body), "may only read")
		assert.Empty(t, r.header.Get("WWW-Authenticate"), "the token was recognised: nothing to re-authenticate")
	}
	r = send(t, "GET", url+"/v1/networks/blue", "", full)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, true, r.json(t)["mac_learning"], "the refused PATCH changed nothing")
	assert.Equal(t, http.StatusNotFound, send(t, "GET", url+"/v1/networks/red", "", full).status, "the refused POST stored nothing")

	// A wrong token is still 401, for reads and writes; the full token still writes.
	requireUnauthorized(t, send(t, "GET", url+"/v1/networks", "", "Bearer "+viewerToken+"x"), "a read with a wrong token")
	requireUnauthorized(t, send(t, "GET", url+"/v1/networks", "", ""), "a read without a token")
	requireUnauthorized(t, send(t, "DELETE", url+"/v1/networks/blue", "", "Bearer wrong-token-0123456789"), "a delete with a wrong token")
	assert.Equal(t, http.StatusNoContent, send(t, "DELETE", url+"/v1/networks/blue", "", full).status)
}

// TestRequireTokenUIPage: the topology page itself needs no token (it holds
// no data; it reads the API with the token the user gives it), the API
// behind it does.
func TestRequireTokenUIPage(t *testing.T) {
	url := newAuthServer(t, AuthOptions{Token: testToken, ViewerToken: viewerToken})
	r := send(t, "GET", url+UIPath, "", "")
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, uiPage, r.body)
	requireUnauthorized(t, send(t, "GET", url+"/v1/hosts", "", ""), "the data behind the page")
	requireUnauthorized(t, send(t, "POST", url+UIPath, "", ""), "a write to /ui is no read")
	assert.Equal(t, http.StatusOK, send(t, "GET", url+"/v1/hosts", "", "Bearer "+viewerToken).status)
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
// for everything but /healthz and /ui, each protected operation lists the
// 401 (and each write the viewer token's 403), and
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
		if path == HealthPath || path == UIPath {
			sec, ok := op["security"].([]any)
			assert.True(t, ok && len(sec) == 0, "%s: declares no security", route)
			assert.False(t, has401, "%s: lists no 401", route)
			assert.Equal(t, http.StatusOK, r.status, "%s is open", route)
			continue
		}
		assert.NotContains(t, op, "security", "%s: inherits the document's security", route)
		assert.True(t, has401, "%s: lists the 401", route)
		_, has403 := obj(t, op, "responses")["403"]
		assert.Equal(t, method != http.MethodGet, has403, "%s: a write lists the viewer token's 403, a read does not", route)
		assert.Equal(t, http.StatusUnauthorized, r.status, "%s without a token", route)
	}
}
