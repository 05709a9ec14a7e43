package northbound

import (
	"io"
	"net/http"
	"time"
)

// DefaultBodyTimeout is how long a client may take to send a request body
// unless told otherwise (brtun serve --api-body-timeout).
const DefaultBodyTimeout = 20 * time.Second

// LimitBodyRead returns middleware that gives a request at most timeout,
// counted once its headers are read, to send its body: a body still
// arriving then fails to read, which the API answers 408 request_timeout,
// and the connection is closed. Headers are bounded by the server's
// ReadHeaderTimeout; together they bound how long a client trickling bytes
// can hold a request open. The limit ends with the body, so a handler may
// run longer (a ?wait, a CPU profile). Requests without a body, and
// ResponseWriters that cannot set a read deadline (httptest recorders),
// are left alone; timeout <= 0 turns it off.
func LimitBodyRead(timeout time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if timeout <= 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body != nil && r.Body != http.NoBody {
				rc := http.NewResponseController(w)
				if rc.SetReadDeadline(time.Now().Add(timeout)) == nil {
					r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// deadlineBody lifts the connection's read deadline once the body is read
// to its end, so that it no longer applies: net/http then watches the
// connection for the client going away, and a deadline expiring there
// would cancel the request's context.
type deadlineBody struct {
	io.ReadCloser
	rc     *http.ResponseController
	lifted bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.lifted {
		b.lifted = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
