package ovsdbtest

import (
	"encoding/json"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// Proxy forwards a unix socket to another one and can cut every connection
// and stop accepting, like an ovsdb-server that went away.
type Proxy struct {
	t           testing.TB
	front, back string

	mu        sync.Mutex
	ln        net.Listener
	conns     []net.Conn
	clients   []*clientConn // the client side of conns
	wg        sync.WaitGroup
	comments  []string         // transaction comments seen
	frozen    bool             // drop what clients send, like a hung server
	removed   map[string][]int // request id -> indexes of removed comment operations
	echoes    int              // echo requests clients sent
	stopProbe chan struct{}    // closed to stop ProbeClients; nil when off
}

// clientConn is a client's connection; writes to it come from the
// connection's backward copy and from ProbeClients.
type clientConn struct {
	nc  net.Conn
	wmu sync.Mutex
}

// Write writes one message (json.Encoder writes each in one call).
func (c *clientConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.nc.Write(b)
}

// proxyEchoID is the id of the echo requests ProbeClients sends, as
// ovsdb-server's own: the clients' answers are not passed on.
const proxyEchoID = `"echo"`

// oneAtATime lets one request of a connection at a time reach the
// server: the in-memory server handles each request on a goroutine of its
// own and writes their answers to the connection without synchronisation
// (a data race in the test server that a client sending a transaction
// beside an echo or a monitor request triggers).
type oneAtATime struct {
	slot  chan struct{} // holds a token while a request waits for its answer
	ended chan struct{} // closed when the connection ends

	mu sync.Mutex
	id string // of the request in flight
}

func newOneAtATime() *oneAtATime {
	return &oneAtATime{slot: make(chan struct{}, 1), ended: make(chan struct{})}
}

// take waits until no request is in flight and makes id the one; false
// when the connection ended first.
func (o *oneAtATime) take(id string) bool {
	select {
	case o.slot <- struct{}{}:
	case <-o.ended:
		return false
	}
	o.mu.Lock()
	o.id = id
	o.mu.Unlock()
	return true
}

// answered frees the slot when id is the request in flight.
func (o *oneAtATime) answered(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.id == "" || o.id != id {
		return
	}
	o.id = ""
	<-o.slot
}

// isRequest reports whether msg is a request that gets an answer: it has a
// method and an id (notifications have a null id).
func isRequest(msg map[string]json.RawMessage) bool {
	_, method := msg["method"]
	id := string(msg["id"])
	return method && id != "" && id != "null"
}

// forward copies JSON-RPC messages from the client to the server, one
// request at a time (oneAtATime). The in-memory server rejects "comment"
// operations (it looks up a table for every operation), so forward records
// them and takes them out.
func (p *Proxy) forward(dst io.Writer, src io.Reader, turn *oneAtATime) {
	dec := json.NewDecoder(src)
	enc := json.NewEncoder(dst)
	for {
		var msg map[string]json.RawMessage
		if err := dec.Decode(&msg); err != nil {
			return
		}
		p.mu.Lock()
		frozen := p.frozen
		p.mu.Unlock()
		if frozen {
			continue
		}
		var method string
		_ = json.Unmarshal(msg["method"], &method)
		if _, request := msg["method"]; !request && string(msg["id"]) == proxyEchoID {
			continue // the answer to ProbeClients
		}
		if method == "echo" {
			p.mu.Lock()
			p.echoes++
			p.mu.Unlock()
		}
		if method == "transact" {
			var params []json.RawMessage
			if err := json.Unmarshal(msg["params"], &params); err == nil {
				kept := params[:0]
				var removed []int
				for i, raw := range params {
					var op struct {
						Op      string `json:"op"`
						Comment string `json:"comment"`
					}
					if i > 0 && json.Unmarshal(raw, &op) == nil && op.Op == "comment" {
						p.mu.Lock()
						p.comments = append(p.comments, op.Comment)
						p.mu.Unlock()
						removed = append(removed, i-1)
						continue
					}
					kept = append(kept, raw)
				}
				msg["params"], _ = json.Marshal(kept)
				if len(removed) > 0 {
					p.mu.Lock()
					p.removed[string(msg["id"])] = removed
					p.mu.Unlock()
				}
			}
		}
		if isRequest(msg) && !turn.take(string(msg["id"])) {
			return
		}
		if err := enc.Encode(msg); err != nil {
			return
		}
	}
}

// backward copies JSON-RPC messages from the server to the client, giving
// transact replies an empty result where forward took a comment out.
func (p *Proxy) backward(dst io.Writer, src io.Reader, turn *oneAtATime) {
	dec := json.NewDecoder(src)
	enc := json.NewEncoder(dst)
	for {
		var msg map[string]json.RawMessage
		if err := dec.Decode(&msg); err != nil {
			return
		}
		var removed []int
		ok := false
		if _, request := msg["method"]; !request { // the server's own requests reuse ids
			turn.answered(string(msg["id"]))
			p.mu.Lock()
			removed, ok = p.removed[string(msg["id"])]
			delete(p.removed, string(msg["id"]))
			p.mu.Unlock()
		}
		var results []json.RawMessage
		if ok && json.Unmarshal(msg["result"], &results) == nil {
			for _, i := range removed {
				if i > len(results) {
					break
				}
				results = append(results[:i], append([]json.RawMessage{json.RawMessage("{}")}, results[i:]...)...)
			}
			msg["result"], _ = json.Marshal(results)
		}
		if err := enc.Encode(msg); err != nil {
			return
		}
	}
}

// Freeze makes the server look hung: requests are dropped, nothing is
// answered, connections stay open.
func (p *Proxy) Freeze(on bool) {
	p.mu.Lock()
	p.frozen = on
	p.mu.Unlock()
}

// ClientEchoes returns how many echo requests the clients sent so far.
func (p *Proxy) ClientEchoes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.echoes
}

// ProbeClients sends every client an echo request every d, as
// ovsdb-server's inactivity probe does on tcp and ssl connections, and
// keeps the answers from the server; 0 stops.
func (p *Proxy) ProbeClients(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopProbe != nil {
		close(p.stopProbe)
		p.stopProbe = nil
	}
	if d <= 0 {
		return
	}
	stop := make(chan struct{})
	p.stopProbe = stop
	echo := []byte(`{"method":"echo","params":[],"id":` + proxyEchoID + "}\n")
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(d)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			p.mu.Lock()
			clients := slices.Clone(p.clients)
			p.mu.Unlock()
			for _, c := range clients {
				_, _ = c.Write(echo)
			}
		}
	}()
}

// Comments returns the transaction comments the clients sent so far.
func (p *Proxy) Comments() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.comments...)
}

func newProxy(t testing.TB, front, back string) *Proxy {
	p := &Proxy{t: t, front: front, back: back, removed: map[string][]int{}}
	p.Up()
	t.Cleanup(p.Down)
	return p
}

// Up accepts connections again after Down.
func (p *Proxy) Up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return
	}
	_ = os.Remove(p.front)
	ln, err := net.Listen("unix", p.front)
	if err != nil {
		p.t.Errorf("proxy: %v", err) // up may run outside the test goroutine
		return
	}
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			back, err := net.Dial("unix", p.back)
			if err != nil {
				conn.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln { // cut while dialling
				p.mu.Unlock()
				conn.Close()
				back.Close()
				return
			}
			client := &clientConn{nc: conn}
			p.conns = append(p.conns, conn, back)
			p.clients = append(p.clients, client)
			p.mu.Unlock()
			turn := newOneAtATime()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); p.forward(back, conn, turn); back.Close() }()
			go func() { defer p.wg.Done(); p.backward(client, back, turn); conn.Close(); close(turn.ended) }()
		}
	}()
}

// Down cuts every connection and stops accepting, like an ovsdb-server
// that went away.
func (p *Proxy) Down() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns, p.clients = nil, nil
	if p.stopProbe != nil {
		close(p.stopProbe)
		p.stopProbe = nil
	}
	p.mu.Unlock()
	p.wg.Wait()
}
