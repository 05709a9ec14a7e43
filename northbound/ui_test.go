package northbound

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUIServed(t *testing.T) {
	a := newTestAPI(t, nil)
	r := a.must("GET", "/ui", "", http.StatusOK)
	assert.Equal(t, "text/html; charset=utf-8", r.header.Get("Content-Type"))
	assert.Equal(t, uiContentSecurityPolicy, r.header.Get("Content-Security-Policy"))
	assert.Contains(t, uiContentSecurityPolicy, "default-src 'none'", "the browser itself refuses any asset the page did not inline")
	assert.Equal(t, uiPage, r.body)
	assert.True(t, strings.HasPrefix(string(r.body), "<!doctype html>"))
	assert.Equal(t, codeMethodNotAllowed, a.must("POST", "/ui", "", http.StatusMethodNotAllowed).errorCode(t))
}

// TestUIIsSelfContained: the page loads nothing but itself and the /v1 JSON routes.
func TestUIIsSelfContained(t *testing.T) {
	page := string(uiPage)
	lower := strings.ToLower(page)

	assert.NotContains(t, lower, "http://")
	assert.NotContains(t, lower, "https://")
	for _, pattern := range []string{
		`<link\b`, `<img\b`, `<iframe\b`, `<object\b`, `<embed\b`, `<base\b`, `<image\b`, `<use\b`,
		`\b(src|href|srcset|xlink:href|action|poster)\s*=`, // attributes that load something
		`@import`, `url\(`, // CSS that loads something
		`["'(]\s*//`,                  // protocol-relative URLs
		`\bimport\s*\(`, `\bimport\s`, // JS modules
		`new\s+(worker|websocket|eventsource)\b`,
	} {
		assert.NotRegexp(t, "(?i)"+pattern, page, "the page must not load external assets")
	}

	// Scripts and styles are inline: plain tags with a body.
	scripts := regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`).FindAllStringSubmatch(page, -1)
	require.Len(t, scripts, 1)
	assert.Empty(t, strings.TrimSpace(scripts[0][1]), "<script> has no attributes (no src, no type=module)")
	assert.Greater(t, len(strings.TrimSpace(scripts[0][2])), 1000, "the script is inline")
	assert.Equal(t, 1, strings.Count(lower, "<script"))
	styles := regexp.MustCompile(`(?is)<style>(.*?)</style>`).FindAllStringSubmatch(page, -1)
	require.Len(t, styles, 1)
	assert.Equal(t, 1, strings.Count(lower, "<style"))
	// Names and descriptions come from the API: the page builds its DOM with
	// textContent only, so none of them can run as markup in a page that
	// holds a token.
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		assert.NotContains(t, page, sink, "the page never parses data as HTML or code")
	}
	for _, id := range []string{`id="login"`, `id="network-filter"`, `id="search"`, `id="hosts"`, `id="networks"`, `id="tunnels"`} {
		assert.Contains(t, page, id, "the page has its login prompt, filters and views")
	}
}

// TestUIFetchesExistingRoutes: every API path the script names is a GET route.
func TestUIFetchesExistingRoutes(t *testing.T) {
	var gets []string
	for _, r := range routerRoutes(t) {
		if path, ok := strings.CutPrefix(r, "GET "); ok {
			gets = append(gets, path)
		}
	}
	literals := regexp.MustCompile(`getJSON\("([^"]+)"`).FindAllStringSubmatch(string(uiPage), -1)
	var fetched []string
	for _, m := range literals {
		fetched = append(fetched, m[1])
	}
	assert.ElementsMatch(t, []string{"v1/networks", "v1/ports", "v1/hosts", "v1/hosts/"}, fetched)
	for _, path := range fetched {
		found := false
		for _, route := range gets {
			found = found || strings.HasPrefix(route, "/"+path)
		}
		assert.True(t, found, "the page fetches %q (relative to /ui), which no GET route serves", path)
	}
	assert.Contains(t, string(uiPage), `+ "/flows?bridge=br-tun&table=0")`, "tunnel counters come from /v1/hosts/{host}/flows")
}
