package hollow

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
)

// This file is the hollow vswitchd's OVSDB client: JSON-RPC 1.0 (RFC 7047)
// over one stream, a "monitor" of the few columns ovs-vswitchd reads and
// writes, a cache of those rows and "transact". It does not use libovsdb:
// that client keeps a ~450 KB event queue per connection, too much for a
// thousand hosts in one process, and a vswitchd needs only a handful of
// columns and one kind of operation (update by _uuid).

// row is one cached row: the monitored columns of its table, parsed. Rows
// are small structs, not generic JSON values: a thousand hosts' caches share
// one process.
type row struct {
	name, typ, target string   // name (Bridge, Port, Interface), type, Controller target
	refs              []string // bridges, ports or interfaces: the references the table leads to
	controllers       []string // Bridge.controller
	nextCfg, curCfg   int
	ofport            int // 0 when unset
	ofportRequest     int
	macInUse          string
	adminState        string
	linkState         string
	datapathID        string // Bridge.datapath_id
	datapathIDConfig  string // Bridge.other_config:datapath-id
	hasDatapathTypes  bool
	inactivityProbe   int // Controller.inactivity_probe in ms, -1 when unset
	maxBackoff        int // Controller.max_backoff in ms, -1 when unset
}

// parseRow keeps what the hollow vswitchd uses of a row of table.
func parseRow(table string, r jsonRow) *row {
	out := &row{name: r.str("name"), typ: r.str("type"), target: r.str("target")}
	switch table {
	case "Open_vSwitch":
		out.refs = r.uuids("bridges")
		out.nextCfg, _ = r.integer("next_cfg")
		out.curCfg, _ = r.integer("cur_cfg")
		out.hasDatapathTypes = len(setMembers(r["datapath_types"])) > 0
	case "Bridge":
		out.refs = r.uuids("ports")
		out.controllers = r.uuids("controller")
		out.datapathID = r.str("datapath_id")
		out.datapathIDConfig = r.strMap("other_config")["datapath-id"]
	case "Port":
		out.refs = r.uuids("interfaces")
	case "Controller":
		out.inactivityProbe, out.maxBackoff = -1, -1
		if v, ok := r.integer("inactivity_probe"); ok {
			out.inactivityProbe = v
		}
		if v, ok := r.integer("max_backoff"); ok {
			out.maxBackoff = v
		}
	case "Interface":
		out.ofport, _ = r.integer("ofport")
		out.ofportRequest, _ = r.integer("ofport_request")
		out.macInUse = r.str("mac_in_use")
		out.adminState = r.str("admin_state")
		out.linkState = r.str("link_state")
	}
	return out
}

// jsonRow is a row as it arrives: column name to its OVSDB JSON value,
// decoded into generic Go values (string, float64, bool, []any).
type jsonRow map[string]any

// tableRows is one table of the cache, by row UUID.
type tableRows map[string]*row

// monitorRequests asks for the columns the hollow vswitchd reads or
// writes, per table.
func monitorRequests() map[string]any {
	columns := map[string][]string{
		"Open_vSwitch": {"bridges", "next_cfg", "cur_cfg", "datapath_types", "iface_types"},
		"Bridge":       {"name", "ports", "controller", "other_config", "datapath_id"},
		"Port":         {"name", "interfaces"},
		"Interface":    {"name", "type", "ofport", "ofport_request", "mac_in_use", "admin_state", "link_state"},
		"Controller":   {"target", "inactivity_probe", "max_backoff"},
	}
	out := map[string]any{}
	for table, cols := range columns {
		out[table] = map[string]any{"columns": cols}
	}
	return out
}

// rpcResponse is a JSON-RPC response or notification as read from the wire.
type rpcMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// dbClient is one OVSDB session with a monitored cache.
type dbClient struct {
	nc      net.Conn
	changed func() // called after every cache change (on the reader goroutine)

	writeMu sync.Mutex
	w       *bufio.Writer

	mu      sync.Mutex
	nextID  int
	pending map[int]chan rpcMessage
	cache   map[string]tableRows
	err     error
	done    chan struct{}
}

// dialDB connects to an OVSDB server at "unix:PATH" or "tcp:IP:PORT".
func dialDB(ctx context.Context, address string) (net.Conn, error) {
	scheme, rest, ok := strings.Cut(address, ":")
	if !ok {
		return nil, fmt.Errorf("ovsdb address %q: want unix:PATH or tcp:IP:PORT", address)
	}
	var d net.Dialer
	switch scheme {
	case "unix":
		return d.DialContext(ctx, "unix", rest)
	case "tcp":
		return d.DialContext(ctx, "tcp", rest)
	default:
		return nil, fmt.Errorf("ovsdb address %q: unsupported scheme %q", address, scheme)
	}
}

// newDBClient starts the reader and installs the monitor; the cache holds
// the initial contents when it returns.
func newDBClient(ctx context.Context, nc net.Conn, changed func()) (*dbClient, error) {
	c := &dbClient{
		nc:      nc,
		changed: changed,
		w:       bufio.NewWriterSize(nc, 4<<10),
		pending: map[int]chan rpcMessage{},
		cache:   map[string]tableRows{},
		done:    make(chan struct{}),
	}
	go c.readLoop()
	res, err := c.call(ctx, "monitor", []any{"Open_vSwitch", "hollow", monitorRequests()})
	if err != nil {
		c.close(err)
		return nil, fmt.Errorf("monitor: %w", err)
	}
	if err := c.applyUpdates(res); err != nil {
		c.close(err)
		return nil, fmt.Errorf("monitor: %w", err)
	}
	return c, nil
}

// close ends the session with a reason; pending calls fail.
func (c *dbClient) close(reason error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = reason
		close(c.done)
	}
	c.mu.Unlock()
	_ = c.nc.Close()
}

// Err tells why the session ended.
func (c *dbClient) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *dbClient) readLoop() {
	dec := json.NewDecoder(bufio.NewReaderSize(c.nc, 4<<10))
	for {
		var m rpcMessage
		if err := dec.Decode(&m); err != nil {
			c.close(fmt.Errorf("read: %w", err))
			return
		}
		switch m.Method {
		case "":
			c.deliver(m)
		case "echo":
			if err := c.send(map[string]any{"id": m.ID, "result": m.Params, "error": nil}); err != nil {
				c.close(err)
				return
			}
		case "update":
			var params []json.RawMessage
			if err := json.Unmarshal(m.Params, &params); err != nil || len(params) != 2 {
				c.close(fmt.Errorf("update notification: bad params %s", m.Params))
				return
			}
			if err := c.applyUpdates(params[1]); err != nil {
				c.close(err)
				return
			}
		}
	}
}

func (c *dbClient) deliver(m rpcMessage) {
	var id int
	if err := json.Unmarshal(m.ID, &id); err != nil {
		return
	}
	c.mu.Lock()
	ch := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if ch != nil {
		ch <- m
	}
}

func (c *dbClient) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if _, err := c.w.Write(b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// call sends a request and waits for its result.
func (c *dbClient) call(ctx context.Context, method string, params []any) (json.RawMessage, error) {
	ch := make(chan rpcMessage, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()
	if err := c.send(map[string]any{"id": id, "method": method, "params": params}); err != nil {
		c.close(err)
		return nil, err
	}
	select {
	case m := <-ch:
		if len(m.Error) > 0 && string(m.Error) != "null" {
			return nil, fmt.Errorf("%s: %s", method, m.Error)
		}
		return m.Result, nil
	case <-c.done:
		return nil, c.Err()
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

// applyUpdates merges a <table-updates> object into the cache. With the
// plain "monitor" method "new" holds every monitored column of the row.
func (c *dbClient) applyUpdates(raw json.RawMessage) error {
	var updates map[string]map[string]struct {
		New map[string]any `json:"new"`
	}
	if err := json.Unmarshal(raw, &updates); err != nil {
		return fmt.Errorf("table updates: %w", err)
	}
	c.mu.Lock()
	for table, rows := range updates {
		t := c.cache[table]
		if t == nil {
			t = tableRows{}
			c.cache[table] = t
		}
		for uuid, u := range rows {
			if u.New == nil {
				delete(t, uuid)
			} else {
				t[uuid] = parseRow(table, jsonRow(u.New))
			}
		}
	}
	c.mu.Unlock()
	c.changed()
	return nil
}

// snapshot copies the cache's row maps (the rows themselves are replaced,
// never changed, so sharing them is safe).
func (c *dbClient) snapshot() map[string]tableRows {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]tableRows, len(c.cache))
	for table, rows := range c.cache {
		cp := make(tableRows, len(rows))
		for uuid, r := range rows {
			cp[uuid] = r
		}
		out[table] = cp
	}
	return out
}

// operation is one OVSDB transact operation.
type operation map[string]any

// updateOp sets columns of the row with the given UUID.
func updateOp(table, uuid string, columns map[string]any) operation {
	return operation{
		"op": "update", "table": table,
		"where": []any{[]any{"_uuid", "==", []any{"uuid", uuid}}},
		"row":   columns,
	}
}

// transact runs ops in one transaction and checks every result.
func (c *dbClient) transact(ctx context.Context, ops []operation) error {
	params := []any{"Open_vSwitch"}
	for _, op := range ops {
		params = append(params, op)
	}
	res, err := c.call(ctx, "transact", params)
	if err != nil {
		return fmt.Errorf("transact: %w", err)
	}
	var results []map[string]any
	if err := json.Unmarshal(res, &results); err != nil {
		return fmt.Errorf("transact: result %s: %w", res, err)
	}
	var errs []error
	for i, r := range results {
		if e, ok := r["error"]; ok && e != nil {
			errs = append(errs, fmt.Errorf("operation %d: %v: %v", i, e, r["details"]))
		}
	}
	return errors.Join(errs...)
}

// Value helpers: OVSDB JSON values (RFC 7047 section 5.1) as decoded by
// encoding/json into generic values.

// str returns a string column ("" when unset).
func (r jsonRow) str(col string) string {
	if s, ok := r[col].(string); ok {
		return s
	}
	if set := setMembers(r[col]); len(set) == 1 {
		s, _ := set[0].(string)
		return s
	}
	return ""
}

// integer returns an integer column that may be an optional (empty set).
func (r jsonRow) integer(col string) (int, bool) {
	v := r[col]
	if set, ok := v.([]any); ok && len(set) == 2 && set[0] == "set" {
		members := setMembers(v)
		if len(members) != 1 {
			return 0, false
		}
		v = members[0]
	}
	f, ok := v.(float64)
	return int(f), ok
}

// uuids returns a column of UUID references (a set or a single one).
func (r jsonRow) uuids(col string) []string {
	var out []string
	for _, m := range setMembers(r[col]) {
		if pair, ok := m.([]any); ok && len(pair) == 2 && pair[0] == "uuid" {
			if s, ok := pair[1].(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// strMap returns a map column of strings.
func (r jsonRow) strMap(col string) map[string]string {
	out := map[string]string{}
	v, ok := r[col].([]any)
	if !ok || len(v) != 2 || v[0] != "map" {
		return out
	}
	pairs, _ := v[1].([]any)
	for _, p := range pairs {
		kv, ok := p.([]any)
		if !ok || len(kv) != 2 {
			continue
		}
		k, _ := kv[0].(string)
		val, _ := kv[1].(string)
		out[k] = val
	}
	return out
}

// setMembers returns the members of a set value; a single atom is a set of
// one (and a ["uuid", ...] pair is one atom).
func setMembers(v any) []any {
	a, ok := v.([]any)
	if !ok {
		if v == nil {
			return nil
		}
		return []any{v}
	}
	if len(a) == 2 && a[0] == "set" {
		members, _ := a[1].([]any)
		return members
	}
	if len(a) == 2 && (a[0] == "uuid" || a[0] == "named-uuid") {
		return []any{a}
	}
	return nil
}

// ovsSet encodes strings as an OVSDB set.
func ovsSet(values []string) []any {
	members := make([]any, len(values))
	for i, v := range values {
		members[i] = v
	}
	return []any{"set", members}
}
