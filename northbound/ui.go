package northbound

import (
	_ "embed"
	"net/http"
)

// uiPage is the topology page served at GET /ui: one self-contained HTML
// file (inline CSS and JavaScript, no external assets) that polls the /v1
// JSON routes and draws hosts, the tunnel mesh and each host's networks.
//
//go:embed ui.html
var uiPage []byte

// uiContentSecurityPolicy lets the page run its own inline script and style
// and talk only to the API that served it; nothing else may load.
const uiContentSecurityPolicy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; " +
	"connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (a *API) ui(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", uiContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(uiPage) // the client went away; nothing left to tell it
}
