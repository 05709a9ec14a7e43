package northbound

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// revisionHeader carries the store revision a write committed.
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

func (a *API) waitApplied(ctx context.Context, rev uint64) ([]string, error) {
	if a.ctrl == nil {
		<-ctx.Done()
		return nil, fmt.Errorf("no controller is running: %w", ctx.Err())
	}
	return a.ctrl.WaitApplied(ctx, rev)
}
