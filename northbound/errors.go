package northbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"syscall"

	"github.com/brtun/brtun/topology"
	"go.uber.org/zap"
)

// Error codes of the {"error":{"code":...}} body.
const (
	codeInvalid            = "invalid"                // 400: a field's value is wrong
	codeInvalidJSON        = "invalid_json"           // 400: malformed JSON, unknown field, wrong type
	codeInvalidQuery       = "invalid_query"          // 400: a query parameter is wrong
	codeUnauthorized       = "unauthorized"           // 401: no or wrong API token (auth.go)
	codeForbidden          = "forbidden"              // 403: the viewer token on a write (auth.go)
	codeNotFound           = "not_found"              // 404
	codeMethodNotAllowed   = "method_not_allowed"     // 405
	codeConflict           = "conflict"               // 409
	codeRequestTimeout     = "request_timeout"        // 408: the request body did not arrive within LimitBodyRead's timeout
	codePreconditionFailed = "precondition_failed"    // 412: If-Match does not match the object's ETag, or is malformed
	codeTooLarge           = "too_large"              // 413
	codeUnsupportedMedia   = "unsupported_media_type" // 415
	codeInternal           = "internal"               // 500
	codeUnavailable        = "unavailable"            // 503: no controller, or the switch cannot be read
	codeNoSpace            = "no_space"               // 503: the state store's disk is full; nothing was stored
	codeNotApplied         = "not_applied"            // 504: ?wait expired before every bridge applied the change
	codeNotBound           = "not_bound"              // 504: a port GET's ?wait expired before the port was bound
)

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
	// Object is the stored object of a write whose ?wait expired (504).
	Object any `json:"object,omitempty"`
}

// ErrorDetail describes what went wrong.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// NotApplied lists the bridges ("HOST/BRIDGE") that had not applied a
	// write when its ?wait expired.
	NotApplied []string `json:"not_applied,omitempty"`
}

// apiError is an error the API itself raises, with its HTTP status.
type apiError struct {
	status int
	detail ErrorDetail
}

func (e *apiError) Error() string { return e.detail.Message }

func apiErr(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, detail: ErrorDetail{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// toAPIError maps any error to its HTTP status and body. This is the one
// place where errors become status codes.
func (a *API) toAPIError(r *http.Request, err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var te *topology.Error
	if errors.As(err, &te) {
		switch {
		case errors.Is(te, topology.ErrInvalid):
			return &apiError{status: http.StatusBadRequest, detail: ErrorDetail{Code: codeInvalid, Message: te.Error(), Field: te.Field}}
		case errors.Is(te, topology.ErrNotFound):
			return apiErr(http.StatusNotFound, codeNotFound, "%s", te.Error())
		case errors.Is(te, topology.ErrConflict):
			return apiErr(http.StatusConflict, codeConflict, "%s", te.Error())
		case errors.Is(te, topology.ErrPrecondition):
			return preconditionErr("%s", te.Error())
		}
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		a.log.Error("state store is out of space", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		return apiErr(http.StatusServiceUnavailable, codeNoSpace,
			"the state store is out of disk space, nothing was stored; free space in brtun's data directory and retry (%v)", err)
	}
	if errors.Is(err, topology.ErrUnavailable) {
		a.log.Warn("state store unavailable", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		return apiErr(http.StatusServiceUnavailable, codeUnavailable,
			"the state store (etcd) cannot be reached, nothing was stored; retry later (%v)", err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return apiErr(http.StatusServiceUnavailable, codeUnavailable, "request canceled: %v", err)
	}
	a.log.Error("request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
	return apiErr(http.StatusInternalServerError, codeInternal, "internal error: %v", err)
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := a.toAPIError(r, err)
	writeJSON(w, ae.status, ErrorBody{Error: ae.detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing left to tell it
}

// fieldErr is a 400 invalid naming the offending field.
func fieldErr(field, format string, args ...any) *apiError {
	ae := apiErr(http.StatusBadRequest, codeInvalid, field+": "+format, args...)
	ae.detail.Field = field
	return ae
}
