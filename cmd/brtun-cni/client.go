package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// The parts of brtun's API objects the plugin reads and writes.
type (
	network struct {
		Name string `json:"name"`
		MTU  int    `json:"mtu"`
	}
	portRequest struct {
		Name        string   `json:"name"`
		Host        string   `json:"host"`
		Interface   string   `json:"interface"`
		IPs         []string `json:"ips,omitempty"`
		DeviceID    string   `json:"device_id"`
		Description string   `json:"description,omitempty"`
		Tags        []string `json:"tags,omitempty"`
	}
	port struct {
		Network        string   `json:"network"`
		Name           string   `json:"name"`
		Host           string   `json:"host"`
		Interface      string   `json:"interface"`
		MAC            string   `json:"mac"`
		IPs            []string `json:"ips"`
		DeviceID       string   `json:"device_id"`
		Status         string   `json:"status"`
		RevisionNumber uint64   `json:"revision_number"`
	}
	portList struct {
		Ports      []port `json:"ports"`
		NextMarker string `json:"next_marker"`
	}
	subnet struct {
		Name       string      `json:"name"`
		CIDR       string      `json:"cidr"`
		GatewayIP  string      `json:"gateway_ip"`
		DNSServers []string    `json:"dns_servers"`
		HostRoutes []hostRoute `json:"host_routes"`
	}
	hostRoute struct {
		Destination string `json:"destination"`
		Nexthop     string `json:"nexthop"`
	}
	subnetList struct {
		Subnets    []subnet `json:"subnets"`
		NextMarker string   `json:"next_marker"`
	}
)

// portBound is a port's status once its interface is on br-int.
const portBound = "bound"

// apiError is an error answer of brtun.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("brtun answered %d %s: %s", e.Status, e.Code, e.Message)
}

// hasStatus reports whether err is an answer of brtun with this status.
func hasStatus(err error, status int) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == status
}

// client talks to brtun's REST API.
type client struct {
	base  string // http(s)://HOST:PORT
	token string
	http  *http.Client
}

// requestTimeout bounds one request; a port GET with ?wait gets its wait on
// top.
const requestTimeout = 15 * time.Second

// do sends a request (body as JSON when not nil), decodes a 2xx answer into
// out (when not nil) and returns the answer's ETag. Other answers become an
// *apiError.
func (c *client) do(ctx context.Context, method, path string, header http.Header, body, out any) (string, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return "", fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", method, path, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return "", fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var eb struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(data, &eb) // a body that is not brtun's still gives the status
		return "", fmt.Errorf("%s %s: %w", method, path, &apiError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message})
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return "", fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.Header.Get("ETag"), nil
}

func networkPath(name string) string { return "/v1/networks/" + url.PathEscape(name) }

func portPath(netName, name string) string {
	return networkPath(netName) + "/ports/" + url.PathEscape(name)
}

// network reads a network.
func (c *client) network(ctx context.Context, name string) (network, error) {
	var n network
	_, err := c.do(ctx, http.MethodGet, networkPath(name), nil, nil, &n)
	return n, err
}

// subnets lists a network's subnets, every page.
func (c *client) subnets(ctx context.Context, netName string) ([]subnet, error) {
	var all []subnet
	for marker := ""; ; {
		q := url.Values{}
		if marker != "" {
			q.Set("marker", marker)
		}
		var page subnetList
		if _, err := c.do(ctx, http.MethodGet, networkPath(netName)+"/subnets?"+q.Encode(), nil, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Subnets...)
		if page.NextMarker == "" {
			return all, nil
		}
		marker = page.NextMarker
	}
}

// ports lists ports across networks matching the filters, every page.
func (c *client) ports(ctx context.Context, filters url.Values) ([]port, error) {
	var all []port
	for marker := ""; ; {
		q := url.Values{}
		for k, v := range filters {
			q[k] = v
		}
		if marker != "" {
			q.Set("marker", marker)
		}
		var page portList
		if _, err := c.do(ctx, http.MethodGet, "/v1/ports?"+q.Encode(), nil, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Ports...)
		if page.NextMarker == "" {
			return all, nil
		}
		marker = page.NextMarker
	}
}

// port reads a port and its ETag. With wait > 0, brtun first waits up to
// wait until the port is bound (504 not_bound when it is not).
func (c *client) port(ctx context.Context, netName, name string, wait time.Duration) (port, string, error) {
	path := portPath(netName, name)
	if wait > 0 {
		path += "?wait=" + url.QueryEscape(wait.String())
	}
	var p port
	etag, err := c.do(ctx, http.MethodGet, path, nil, nil, &p)
	return p, etag, err
}

// createPortTries bounds how often createPort replaces a same-named port.
const createPortTries = 3

// createPort creates a port; it answers the port and its ETag. A port of
// the same name that belongs to the same device on the same host is a
// leftover of an earlier ADD of this attachment (names follow from the
// container id and interface name): it is deleted, guarded by its ETag so
// that a concurrent change is never overwritten, and the create is tried
// again. A same-named port of another device is left alone: 409.
func (c *client) createPort(ctx context.Context, netName string, req portRequest) (port, string, error) {
	var lastErr error
	for try := 0; try < createPortTries; try++ {
		var p port
		etag, err := c.do(ctx, http.MethodPost, networkPath(netName)+"/ports", nil, req, &p)
		if err == nil {
			return p, etag, nil
		}
		if !hasStatus(err, http.StatusConflict) {
			return port{}, "", err
		}
		lastErr = err
		old, oldTag, gerr := c.port(ctx, netName, req.Name, 0)
		switch {
		case hasStatus(gerr, http.StatusNotFound):
			continue // not a name conflict, or the leftover went away meanwhile: try again
		case gerr != nil:
			return port{}, "", fmt.Errorf("%w (and reading the same-named port: %v)", err, gerr)
		case old.DeviceID != req.DeviceID || old.Host != req.Host:
			return port{}, "", fmt.Errorf("%w: port %s/%s belongs to device %q on host %q", err, netName, req.Name, old.DeviceID, old.Host)
		}
		if derr := c.deletePort(ctx, netName, req.Name, oldTag); derr != nil && !hasStatus(derr, http.StatusPreconditionFailed) {
			return port{}, "", fmt.Errorf("replace the leftover port %s/%s: %w", netName, req.Name, derr)
		}
	}
	return port{}, "", fmt.Errorf("create port %s/%s: still conflicting after %d tries: %w", netName, req.Name, createPortTries, lastErr)
}

// deletePort deletes a port; with an ETag only while the port is unchanged
// (412 otherwise). A port that is already gone is no error.
func (c *client) deletePort(ctx context.Context, netName, name, etag string) error {
	var h http.Header
	if etag != "" {
		h = http.Header{"If-Match": {etag}}
	}
	_, err := c.do(ctx, http.MethodDelete, portPath(netName, name), h, nil, nil)
	if hasStatus(err, http.StatusNotFound) {
		return nil
	}
	return err
}
