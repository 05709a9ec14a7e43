package northbound

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the OpenAPI 3 description of every route, served at
// GET /v1/openapi.json. A test checks it against the router both ways.
//
//go:embed openapi.json
var openAPIDocument []byte

func (a *API) openAPI(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPIDocument) // the client went away; nothing left to tell it
}
