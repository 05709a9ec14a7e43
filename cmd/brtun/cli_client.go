package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/brtun/brtun/northbound"
)

// client talks to brtun's REST API.
type client struct {
	base  string
	token string // sent as Authorization: Bearer TOKEN when set
	http  *http.Client
}

// requestTimeout bounds a request that does not wait for the switches.
const requestTimeout = 30 * time.Second

func newClient(o *cliOptions, wait time.Duration) (*client, error) {
	server := o.server
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	u, err := url.Parse(server)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("--server %q: want http://HOST:PORT or https://HOST:PORT", server)
	}
	c := &client{
		base: strings.TrimSuffix(u.String(), "/"),
		http: &http.Client{Timeout: requestTimeout + wait},
	}
	if o.tokenFile != "" {
		if c.token, err = northbound.ReadTokenFile(o.tokenFile); err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
	}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s holds no PEM certificate", o.caFile)
		}
		c.http.Transport = &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool},
			TLSHandshakeTimeout: 10 * time.Second,
		}
	}
	return c, nil
}

// apiError is an error answer of the API.
type apiError struct {
	status int
	body   northbound.ErrorBody
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (HTTP %d %s)", e.body.Error.Message, e.status, e.body.Error.Code)
}

// do sends a request (body, when not nil, as JSON) and returns the raw
// response body of a 2xx answer. Other answers become *apiError.
func (c *client) do(ctx context.Context, method, path string, query url.Values, body any) ([]byte, error) {
	raw, _, err := c.doHeaders(ctx, method, path, query, body, nil)
	return raw, err
}

// doHeaders is do with extra request headers (If-Match, Content-Type),
// returning the answer's headers (ETag) too.
func (c *client) doHeaders(ctx context.Context, method, path string, query url.Values, body any, headers http.Header) ([]byte, http.Header, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(raw)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if res.StatusCode/100 == 2 {
		return raw, res.Header, nil
	}
	ae := &apiError{status: res.StatusCode}
	if err := json.Unmarshal(raw, &ae.body); err != nil || ae.body.Error.Message == "" {
		ae.body.Error.Code = "http"
		ae.body.Error.Message = strings.TrimSpace(string(raw))
		if ae.body.Error.Message == "" {
			ae.body.Error.Message = http.StatusText(res.StatusCode)
		}
	}
	return nil, nil, ae
}

// writeQuery is the query of a write: ?wait and ?cascade.
func writeQuery(wait time.Duration, cascade bool) url.Values {
	q := url.Values{}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	if cascade {
		q.Set("cascade", "true")
	}
	return q
}

// objectOf returns the stored object of an error answer (a write whose
// ?wait expired) as raw JSON, or nil.
func objectOf(err error) []byte {
	ae, ok := err.(*apiError)
	if !ok || ae.body.Object == nil {
		return nil
	}
	raw, mErr := json.Marshal(ae.body.Object)
	if mErr != nil {
		return nil
	}
	return raw
}
