package northbound

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// decodeBody reads the JSON request body into v: it must say it is JSON,
// be at most maxBodyBytes, hold exactly one object of v's shape and no
// unknown fields.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength != 0 {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/json" {
			return apiErr(http.StatusUnsupportedMediaType, codeUnsupportedMedia,
				"request body must be JSON with Content-Type: application/json (got %q)", r.Header.Get("Content-Type"))
		}
	}
	if r.ContentLength > maxBodyBytes {
		return apiErr(http.StatusRequestEntityTooLarge, codeTooLarge, "request body is over %d bytes", maxBodyBytes)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
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
		ae := apiErr(http.StatusBadRequest, codeInvalidJSON, "unknown field %s", name)
		ae.detail.Field, _ = strconv.Unquote(name)
		return ae
	}
	return apiErr(http.StatusBadRequest, codeInvalidJSON, "cannot decode request body: %v", err)
}

// writeParams are the query parameters every write accepts.
type writeParams struct {
	wait    time.Duration // 0: answer at once
	cascade bool
}

// parseWriteParams reads ?wait=DURATION and ?cascade=BOOL before anything
// is written, so a bad parameter stores nothing.
func (a *API) parseWriteParams(r *http.Request) (writeParams, error) {
	var p writeParams
	q := r.URL.Query()
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > a.maxWait {
			return p, apiErr(http.StatusBadRequest, codeInvalidQuery, "wait=%q: want a duration such as 5s, up to %s", s, a.maxWait)
		}
		p.wait = d
	}
	if s := q.Get("cascade"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return p, apiErr(http.StatusBadRequest, codeInvalidQuery, "cascade=%q: want true or false", s)
		}
		p.cascade = b
	}
	return p, nil
}
