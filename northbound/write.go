package northbound

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// revisionHeader carries the store revision a write committed, or the
// store's current revision on a read.
const revisionHeader = "X-Brtun-Revision"

// finishWrite answers a committed write of revision rev. Without ?wait it
// answers status with view() at once. With ?wait it first waits until every
// bridge the change touches has applied it; on timeout it answers 504 with
// the stored object and the bridges that did not apply it. The write stays
// committed either way. view may be nil (deletes).
func (a *API) finishWrite(w http.ResponseWriter, r *http.Request, p writeParams, rev uint64, status int, view func() any) {
	w.Header().Set(revisionHeader, strconv.FormatUint(rev, 10))
	if p.wait > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), p.wait)
		notApplied, err := a.waitApplied(ctx, rev)
		cancel()
		if err != nil || len(notApplied) > 0 {
			msg := fmt.Sprintf("revision %d is committed but was not applied within %s", rev, p.wait)
			if len(notApplied) > 0 {
				msg += " by " + strings.Join(notApplied, ", ")
			}
			if err != nil {
				msg += ": " + err.Error()
			}
			body := ErrorBody{Error: ErrorDetail{Code: codeNotApplied, Message: msg, NotApplied: notApplied}}
			if view != nil {
				body.Object = view()
			}
			writeJSON(w, http.StatusGatewayTimeout, body)
			return
		}
	}
	if view == nil {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, view())
}

// finishCreate answers a committed create: 201 with Location and ETag.
func (a *API) finishCreate(w http.ResponseWriter, r *http.Request, p writeParams, rev uint64, location string, objRev uint64, view func() any) {
	w.Header().Set("Location", location)
	setETag(w, objRev)
	a.finishWrite(w, r, p, rev, http.StatusCreated, view)
}

// readRevision puts the store's current revision on every read (GET and
// HEAD), read before the handler reads the store, so that a bridge whose
// applied_revision reached it has applied what the answer shows or later.
func (a *API) readRevision(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			if rev, err := a.store.Revision(r.Context()); err == nil {
				w.Header().Set(revisionHeader, strconv.FormatUint(rev, 10))
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (a *API) waitApplied(ctx context.Context, rev uint64) ([]string, error) {
	if a.ctrl == nil {
		<-ctx.Done()
		return nil, fmt.Errorf("no controller is running: %w", ctx.Err())
	}
	return a.ctrl.WaitApplied(ctx, rev)
}
