package ofswitch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// target is a parsed OVS-style connection string.
type target struct {
	network string // "tcp" or "unix"
	address string // host:port or a socket path
	tls     bool
}

// parseTarget parses "tcp:IP:PORT", "ssl:IP:PORT" (IPv6 in brackets, as OVS
// writes it: tcp:[2001:db8::1]:6653) and "unix:PATH".
func parseTarget(s string) (target, error) {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" {
		return target{}, fmt.Errorf("openflow target %q: want tcp:IP:PORT, ssl:IP:PORT or unix:PATH", s)
	}
	switch scheme {
	case "unix":
		return target{network: "unix", address: rest}, nil
	case "tcp", "ssl":
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			return target{}, fmt.Errorf("openflow target %q: %w", s, err)
		}
		if port == "" {
			return target{}, fmt.Errorf("openflow target %q: missing port", s)
		}
		return target{network: "tcp", address: net.JoinHostPort(host, port), tls: scheme == "ssl"}, nil
	default:
		return target{}, fmt.Errorf("openflow target %q: unknown scheme %q", s, scheme)
	}
}

// DialOptions configure Dial.
type DialOptions struct {
	Options
	// TLSConfig is required for ssl: targets (client side: CA, certificate).
	TLSConfig *tls.Config
}

// Dial connects to a switch's passive OpenFlow endpoint ("unix:PATH" such as
// a bridge's .mgmt socket, "tcp:IP:PORT" or "ssl:IP:PORT") and completes the
// handshake.
func Dial(ctx context.Context, addr string, opts DialOptions) (*Conn, error) {
	t, err := parseTarget(addr)
	if err != nil {
		return nil, err
	}
	if t.tls && opts.TLSConfig == nil {
		return nil, fmt.Errorf("dial %s: ssl needs a TLS config", addr)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, t.network, t.address)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if t.tls {
		tc := tls.Client(nc, opts.TLSConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, fmt.Errorf("dial %s: tls: %w", addr, err)
		}
		nc = tc
	}
	c, err := newConn(ctx, nc, opts.Options)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return c, nil
}

// ListenerOptions configure a Listener.
type ListenerOptions struct {
	// Options apply to every accepted connection.
	Options
	// Address is "tcp:IP:PORT" or "ssl:IP:PORT" (port 0 picks a free port).
	Address string
	// TLSConfig is required for ssl: (server side: certificate, key, and
	// ClientCAs with RequireAndVerifyClientCert to check the switches).
	TLSConfig *tls.Config
	// OnConnect is called with each switch after its handshake, on that
	// connection's own goroutine.
	OnConnect func(*Conn)
	// OnDisconnect is called once the connection has closed, with the reason.
	OnDisconnect func(*Conn, error)
}

// Listener accepts switches that connect to brtun (ovs-vsctl set-controller).
type Listener struct {
	opts ListenerOptions
	log  *zap.Logger
	ln   net.Listener

	mu     sync.Mutex
	conns  map[net.Conn]*Conn // raw connections, nil while in handshake
	closed bool
	wg     sync.WaitGroup
}

// Listen opens the listening socket; Serve accepts on it.
func Listen(opts ListenerOptions) (*Listener, error) {
	t, err := parseTarget(opts.Address)
	if err != nil {
		return nil, err
	}
	if t.network != "tcp" {
		return nil, fmt.Errorf("listen %s: only tcp: and ssl: addresses", opts.Address)
	}
	if t.tls && opts.TLSConfig == nil {
		return nil, fmt.Errorf("listen %s: ssl needs a TLS config", opts.Address)
	}
	if _, err := opts.Options.withDefaults(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", t.address)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", opts.Address, err)
	}
	if t.tls {
		ln = tls.NewListener(ln, opts.TLSConfig)
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Listener{
		opts:  opts,
		log:   log.Named("ofswitch").With(zap.String("listen", ln.Addr().String())),
		ln:    ln,
		conns: make(map[net.Conn]*Conn),
	}, nil
}

// Addr returns the address the listener is bound to.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Serve accepts switches until ctx ends or Close is called, then closes every
// connection it accepted and waits for their callbacks to finish. It returns
// nil after an orderly stop.
func (l *Listener) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = l.Close() })
	defer stop()
	l.log.Info("listening for switches")
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			l.closeAll()
			l.wg.Wait()
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		if !l.track(nc, nil) {
			_ = nc.Close()
			continue
		}
		l.wg.Add(1)
		go l.serveConn(ctx, nc)
	}
}

// serveConn runs one accepted connection from handshake to close.
func (l *Listener) serveConn(ctx context.Context, nc net.Conn) {
	defer l.wg.Done()
	defer l.untrack(nc)
	c, err := newConn(ctx, nc, l.opts.Options)
	if err != nil {
		l.log.Warn("switch handshake failed", zap.String("remote", nc.RemoteAddr().String()), zap.Error(err))
		return
	}
	if !l.track(nc, c) { // the listener closed during the handshake
		_ = c.Close()
		return
	}
	if l.opts.OnConnect != nil {
		l.opts.OnConnect(c)
	}
	<-c.Done()
	_ = c.Close() // wait for the connection's goroutines; keeps the reason
	if l.opts.OnDisconnect != nil {
		l.opts.OnDisconnect(c, c.Err())
	}
}

// track records a connection; it refuses once the listener is closed.
func (l *Listener) track(nc net.Conn, c *Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[nc] = c
	return true
}

func (l *Listener) untrack(nc net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, nc)
}

// closeAll closes every accepted connection, including those in handshake.
func (l *Listener) closeAll() {
	l.mu.Lock()
	l.closed = true
	conns := make(map[net.Conn]*Conn, len(l.conns))
	for nc, c := range l.conns {
		conns[nc] = c
	}
	l.mu.Unlock()
	for nc, c := range conns {
		if c != nil {
			_ = c.Close()
		} else {
			_ = nc.Close()
		}
	}
}

// Close stops accepting; Serve then closes the accepted connections.
func (l *Listener) Close() error {
	err := l.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
