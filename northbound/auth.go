package northbound

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/brtun/brtun/topology"
	"go.uber.org/zap"
)

// HealthPath is the liveness endpoint; it never needs a token, so probes
// work without one.
const HealthPath = "/healthz"

// UIPath is the topology page. It holds no data (the page reads the API
// with the token the user gives it), so it never needs a token either.
const UIPath = "/ui"

// MinTokenLength is the shortest bearer token ReadTokenFile accepts.
const MinTokenLength = 16

// AuthOptions configure RequireToken.
type AuthOptions struct {
	// Token is the bearer token clients send as "Authorization: Bearer
	// TOKEN". Empty leaves every request through.
	Token string
	// ViewerToken is a second bearer token that may only read: GET and HEAD
	// pass with it, any other method answers 403 (code "forbidden"). Empty:
	// no viewer token. It must differ from Token.
	ViewerToken string
	// ReadOpen lets GET and HEAD requests through without a token; writes
	// still need it.
	ReadOpen bool
	Logger   *zap.Logger // nil: no logging
}

// ReadTokenFile reads a bearer token from path: the file's content without
// the surrounding white space (a trailing newline is fine). The token must
// be at least MinTokenLength characters of printable ASCII without spaces.
func ReadTokenFile(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	token := strings.TrimSpace(string(raw))
	if len(token) < MinTokenLength {
		return "", fmt.Errorf("token file %s: the token must be at least %d characters, got %d", path, MinTokenLength, len(token))
	}
	for _, c := range token {
		if c <= ' ' || c > '~' {
			return "", fmt.Errorf("token file %s: the token must be one line of printable ASCII without spaces", path)
		}
	}
	return token, nil
}

// RequireToken returns middleware that answers 401 with an Error body
// (code "unauthorized") unless the request carries the bearer token, is a
// read while reads are open, or asks for HealthPath or UIPath. A request
// with the viewer token passes if it is a read and is answered 403 (code
// "forbidden") otherwise. Tokens are compared in constant time (as SHA-256
// digests, so their length does not leak either).
func RequireToken(o AuthOptions) func(http.Handler) http.Handler {
	if o.Token == "" {
		return func(next http.Handler) http.Handler { return next }
	}
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("auth")
	want := sha256.Sum256([]byte(o.Token))
	var viewer *[sha256.Size]byte
	if o.ViewerToken != "" {
		sum := sha256.Sum256([]byte(o.ViewerToken))
		viewer = &sum
	}
	refused := &refusalLog{}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			read := r.Method == http.MethodGet || r.Method == http.MethodHead
			if r.URL.Path == HealthPath || (r.URL.Path == UIPath && read) || (o.ReadOpen && read) {
				next.ServeHTTP(w, r)
				return
			}
			got, reason := bearerToken(r)
			if reason == "" {
				sum := sha256.Sum256([]byte(got))
				isViewer := viewer != nil && subtle.ConstantTimeCompare(sum[:], viewer[:]) == 1
				switch {
				case subtle.ConstantTimeCompare(sum[:], want[:]) == 1, isViewer && read:
					next.ServeHTTP(w, r)
					return
				case isViewer:
					refused.log(log, r, "viewer token on a write")
					writeJSON(w, http.StatusForbidden, ErrorBody{Error: ErrorDetail{
						Code:    codeForbidden,
						Message: "the viewer token may only read (GET, HEAD): send the API token to " + topology.Clip(r.Method),
					}})
					return
				}
				reason = "wrong token"
			}
			refused.log(log, r, reason)
			w.Header().Set("WWW-Authenticate", `Bearer realm="brtun"`)
			writeJSON(w, http.StatusUnauthorized, ErrorBody{Error: ErrorDetail{
				Code:    codeUnauthorized,
				Message: reason + ": send the API token as Authorization: Bearer TOKEN",
			}})
		})
	}
}

// bearerToken returns the token of an "Authorization: Bearer TOKEN"
// header, or why there is none.
func bearerToken(r *http.Request) (token, reason string) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", "no token"
	}
	scheme, token, _ := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", "not a bearer token"
	}
	return token, ""
}

// refusalWarnEvery is the shortest interval between two warnings about
// refused requests.
const refusalWarnEvery = time.Minute

// refusalLog logs every refused request at debug level, and at most one
// warning per refusalWarnEvery saying how many were refused, so a client
// retrying with a wrong token cannot flood the log.
type refusalLog struct {
	mu       sync.Mutex
	lastWarn time.Time
	since    int // refusals since the last warning
}

func (l *refusalLog) log(log *zap.Logger, r *http.Request, reason string) {
	fields := []zap.Field{zap.String("method", r.Method), zap.String("path", topology.Clip(r.URL.Path)),
		zap.String("remote", r.RemoteAddr), zap.String("reason", reason)}
	log.Debug("request refused", fields...)
	l.mu.Lock()
	l.since++
	now := time.Now()
	warn := l.lastWarn.IsZero() || now.Sub(l.lastWarn) >= refusalWarnEvery
	n := l.since
	if warn {
		l.lastWarn, l.since = now, 0
	}
	l.mu.Unlock()
	if warn {
		log.Warn("requests refused without a valid token (each one is logged at debug level)",
			append(fields, zap.Int("refused_since_last_warning", n))...)
	}
}
