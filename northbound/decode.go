package northbound

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/brtun/brtun/topology"
)

// Media types of request bodies.
const (
	mediaJSON       = "application/json"
	mediaMergePatch = "application/merge-patch+json" // RFC 7396, PATCH only
)

// readBody checks that the request body is one of the media types given
// (UTF-8, the only charset JSON allows on the wire) and at most
// maxBodyBytes, and returns it.
func readBody(w http.ResponseWriter, r *http.Request, mediaTypes ...string) ([]byte, error) {
	if r.ContentLength != 0 {
		ct := r.Header.Get("Content-Type")
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || !slices.Contains(mediaTypes, mt) {
			return nil, apiErr(http.StatusUnsupportedMediaType, codeUnsupportedMedia,
				"request body must be JSON with Content-Type: %s (got %q)", strings.Join(mediaTypes, " or "), topology.Clip(ct))
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return nil, apiErr(http.StatusUnsupportedMediaType, codeUnsupportedMedia,
				"request body must be UTF-8 (got charset=%q)", topology.Clip(cs))
		}
	}
	if r.ContentLength > maxBodyBytes {
		return nil, apiErr(http.StatusRequestEntityTooLarge, codeTooLarge, "request body is over %d bytes", maxBodyBytes)
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, apiErr(http.StatusRequestTimeout, codeRequestTimeout,
			"the request body did not arrive in time (after %d bytes); send it at once", len(raw))
	}
	if err != nil {
		return nil, jsonError(err)
	}
	return raw, nil
}

// decodeBody reads the JSON request body into v: it must say it is JSON,
// be at most maxBodyBytes, hold exactly one object of v's shape and no
// unknown fields.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	raw, err := readBody(w, r, mediaJSON)
	if err != nil {
		return err
	}
	return decodeStrict(raw, v)
}

// decodeStrict decodes raw, which must hold exactly one JSON value of v's
// shape without unknown fields, into v.
func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	// A RawMessage takes any value, so a second value is reported as
	// such, not as an unknown field of v.
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		if err == nil {
			return apiErr(http.StatusBadRequest, codeInvalidJSON, "request body holds more than one JSON value")
		}
		return jsonError(err)
	}
	return nil
}

// jsonError turns a decoding error into a 400 (or 413) that says what was wrong.
func jsonError(err error) error {
	var tooLarge *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge):
		return apiErr(http.StatusRequestEntityTooLarge, codeTooLarge, "request body is over %d bytes", maxBodyBytes)
	case errors.Is(err, io.EOF):
		return apiErr(http.StatusBadRequest, codeInvalidJSON, "request body is empty; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apiErr(http.StatusBadRequest, codeInvalidJSON, "request body is truncated JSON")
	case errors.As(err, &syntax):
		return apiErr(http.StatusBadRequest, codeInvalidJSON, "malformed JSON at byte %d: %v", syntax.Offset, err)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return apiErr(http.StatusBadRequest, codeInvalidJSON, "request body must be a JSON object, got JSON %s", typ.Value)
		}
		ae := apiErr(http.StatusBadRequest, codeInvalidJSON, "%s: want %s, got JSON %s", typ.Field, typ.Type, typ.Value)
		ae.detail.Field = typ.Field
		return ae
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for DisallowUnknownFields.
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		ae := apiErr(http.StatusBadRequest, codeInvalidJSON, "unknown field %s", topology.Clip(name))
		ae.detail.Field, _ = strconv.Unquote(name)
		ae.detail.Field = topology.Clip(ae.detail.Field)
		return ae
	}
	return apiErr(http.StatusBadRequest, codeInvalidJSON, "cannot decode request body: %v", err)
}

// checkQuery answers 400 invalid_query for a query parameter that is not
// one of allowed.
func checkQuery(r *http.Request, allowed ...string) error {
	for name := range r.URL.Query() {
		if !slices.Contains(allowed, name) {
			if len(allowed) == 0 {
				return apiErr(http.StatusBadRequest, codeInvalidQuery, "unknown query parameter %q: this request takes none", topology.Clip(name))
			}
			return apiErr(http.StatusBadRequest, codeInvalidQuery, "unknown query parameter %q (want %s)", topology.Clip(name), strings.Join(allowed, ", "))
		}
	}
	return nil
}

// writeParams are the query parameters of a write.
type writeParams struct {
	wait    time.Duration // 0: answer at once
	cascade bool
	ifMatch topology.IfMatch // nil: no If-Match, or If-Match: *
}

// parseWriteParams reads ?wait=DURATION (and, for deletes, ?cascade=BOOL)
// and the If-Match header before anything is written, so a bad parameter
// stores nothing.
func (a *API) parseWriteParams(r *http.Request) (writeParams, error) {
	var p writeParams
	allowed := []string{"wait"}
	if r.Method == http.MethodDelete {
		allowed = append(allowed, "cascade")
	}
	if err := checkQuery(r, allowed...); err != nil {
		return p, err
	}
	q := r.URL.Query()
	if s := q.Get("wait"); s != "" {
		d, err := a.parseWait(s)
		if err != nil {
			return p, err
		}
		p.wait = d
	}
	if s := q.Get("cascade"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return p, apiErr(http.StatusBadRequest, codeInvalidQuery, "cascade=%q: want true or false", topology.Clip(s))
		}
		p.cascade = b
	}
	var err error
	p.ifMatch, err = parseIfMatch(r.Header.Values("If-Match"))
	return p, err
}

// parseWait reads a ?wait duration: positive, at most MaxWait.
func (a *API) parseWait(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > a.maxWait {
		return 0, apiErr(http.StatusBadRequest, codeInvalidQuery, "wait=%q: want a duration such as 5s, up to %s", topology.Clip(s), a.maxWait)
	}
	return d, nil
}
