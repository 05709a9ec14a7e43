// Command brtun-hollow runs N hollow hosts in one process for scale tests:
// for each host a real ovsdb-server (a child process) and a hollow
// ovs-vswitchd (package hollow) against it. It prints one JSON line per host
// with the address to register with brtun, serves the hosts' flow tables and
// memory figures over HTTP, and stops everything on SIGINT or SIGTERM.
//
//	brtun-hollow --hosts 100 --dir /tmp/hollow --http 127.0.0.1:9700
//	curl -s 127.0.0.1:9700/hosts/h1/br-tun/flows
//	curl -s 127.0.0.1:9700/memory
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brtun/brtun/hollow"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "brtun-hollow:", err)
		os.Exit(1)
	}
}

// options are the command line flags.
type options struct {
	hosts     int
	first     int
	prefix    string
	dir       string
	tcpIP     string
	tcpPort   int
	httpAddr  string
	logLevel  string
	probe     time.Duration
	startRate int
	pprof     bool
}

func parseFlags() options {
	var o options
	flag.IntVar(&o.hosts, "hosts", 10, "number of hollow hosts")
	flag.IntVar(&o.first, "first", 1, "index of the first host (names are PREFIX<index>)")
	flag.StringVar(&o.prefix, "prefix", "h", "host name prefix")
	flag.StringVar(&o.dir, "dir", "/tmp/brtun-hollow", "run directory: one subdirectory per host with its database and socket")
	flag.StringVar(&o.tcpIP, "ovsdb-tcp-ip", "", "also serve each host's OVSDB on tcp:IP:PORT (PORT from --ovsdb-tcp-port up)")
	flag.IntVar(&o.tcpPort, "ovsdb-tcp-port", 16640, "first TCP port for --ovsdb-tcp-ip")
	flag.StringVar(&o.httpAddr, "http", "", "serve /hosts, /hosts/NAME/BRIDGE/flows and /memory on this address")
	flag.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	flag.DurationVar(&o.probe, "probe-interval", 5*time.Second, "OpenFlow inactivity probe (OVS: 5s)")
	flag.IntVar(&o.startRate, "start-parallel", 8, "ovsdb-servers started at once")
	flag.BoolVar(&o.pprof, "pprof", false, "also serve /debug/pprof/ on --http")
	flag.Parse()
	return o
}

// host is one running hollow host.
type host struct {
	name string
	db   *hollow.DBServer
	h    *hollow.Host
}

// hostLine is what the command prints per host.
type hostLine struct {
	Name  string `json:"name"`
	OVSDB string `json:"ovsdb"`
}

func run() error {
	o := parseFlags()
	if o.hosts < 1 {
		return errors.New("--hosts must be at least 1")
	}
	level, err := zap.ParseAtomicLevel(o.logLevel)
	if err != nil {
		return err
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = level
	log, err := cfg.Build()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	hosts, err := startHosts(ctx, o, log)
	defer func() {
		for _, h := range hosts {
			h.h.Close()
			h.db.Stop()
		}
	}()
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	for _, h := range hosts {
		addr := h.db.Socket
		if h.db.TCP != "" {
			addr = h.db.TCP
		}
		if err := enc.Encode(hostLine{Name: h.name, OVSDB: addr}); err != nil {
			return err
		}
	}
	if o.httpAddr != "" {
		ln, err := net.Listen("tcp", o.httpAddr)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: handler(hosts, o.pprof), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}
	log.Info("hollow hosts running", zap.Int("hosts", len(hosts)))
	<-ctx.Done()
	return nil
}

// startHosts starts the ovsdb-servers (a few at a time) and the hollow
// vswitchds.
func startHosts(ctx context.Context, o options, log *zap.Logger) ([]*host, error) {
	hosts := make([]*host, o.hosts)
	errs := make(chan error, o.hosts)
	sem := make(chan struct{}, max(1, o.startRate))
	for i := range o.hosts {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			idx := o.first + i
			name := o.prefix + strconv.Itoa(idx)
			dbo := hollow.DBServerOptions{Dir: filepath.Join(o.dir, name)}
			if o.tcpIP != "" {
				dbo.TCPListen = net.JoinHostPort(o.tcpIP, strconv.Itoa(o.tcpPort+i))
			}
			db, err := hollow.StartDBServer(ctx, dbo)
			if err != nil {
				errs <- fmt.Errorf("host %s: %w", name, err)
				return
			}
			hosts[i] = &host{name: name, db: db, h: hollow.Start(hollow.Options{
				Name: name, OVSDB: db.Socket, Logger: log, ProbeInterval: o.probe,
			})}
			errs <- nil
		}()
	}
	var all []error
	for range o.hosts {
		all = append(all, <-errs)
	}
	var started []*host
	for _, h := range hosts {
		if h != nil {
			started = append(started, h)
		}
	}
	return started, errors.Join(all...)
}

// memory is what /memory reports.
type memory struct {
	Hosts             int   `json:"hosts"`
	HollowRSS         int64 `json:"hollow_rss_bytes"`
	HollowRSSPerHost  int64 `json:"hollow_rss_per_host_bytes"`
	OVSDBRSSTotal     int64 `json:"ovsdb_server_rss_total_bytes"`
	OVSDBRSSPerHost   int64 `json:"ovsdb_server_rss_per_host_bytes"`
	OVSDBPSSTotal     int64 `json:"ovsdb_server_pss_total_bytes"`
	OVSDBPSSPerHost   int64 `json:"ovsdb_server_pss_per_host_bytes"`
	ConnectedSwitches int   `json:"connected_switches"`
	Bridges           int   `json:"bridges"`
}

func handler(hosts []*host, withPprof bool) http.Handler {
	byName := map[string]*host{}
	for _, h := range hosts {
		byName[h.name] = h
	}
	mux := http.NewServeMux()
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	mux.HandleFunc("GET /hosts", func(w http.ResponseWriter, _ *http.Request) {
		type status struct {
			Name      string            `json:"name"`
			OVSDB     string            `json:"ovsdb"`
			CurCfg    int               `json:"cur_cfg"`
			Connected map[string]int    `json:"connected"`
			FlowMods  map[string]uint64 `json:"flow_mods"`
		}
		var out []status
		for _, h := range hosts {
			st := status{Name: h.name, OVSDB: h.db.Socket, CurCfg: h.h.Applied(), Connected: map[string]int{}, FlowMods: map[string]uint64{}}
			for _, br := range h.h.BridgeNames() {
				if b := h.h.Bridge(br); b != nil {
					st.Connected[br] = b.Connected()
					st.FlowMods[br] = b.FlowMods()
				}
			}
			out = append(out, st)
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("GET /hosts/{name}/{bridge}/flows", func(w http.ResponseWriter, r *http.Request) {
		h := byName[r.PathValue("name")]
		if h == nil {
			http.Error(w, "no such host", http.StatusNotFound)
			return
		}
		b := h.h.Bridge(r.PathValue("bridge"))
		if b == nil {
			http.Error(w, "no such bridge", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		for _, line := range b.DumpFlows() {
			fmt.Fprintln(w, " "+line)
		}
	})
	mux.HandleFunc("GET /memory", func(w http.ResponseWriter, _ *http.Request) {
		m := memory{Hosts: len(hosts)}
		m.HollowRSS, _ = hollow.RSS(os.Getpid())
		for _, h := range hosts {
			if rss, err := hollow.RSS(h.db.PID()); err == nil {
				m.OVSDBRSSTotal += rss
			}
			if pss, err := hollow.PSS(h.db.PID()); err == nil {
				m.OVSDBPSSTotal += pss
			}
			for _, br := range h.h.BridgeNames() {
				m.Bridges++
				if b := h.h.Bridge(br); b != nil {
					m.ConnectedSwitches += b.Connected()
				}
			}
		}
		m.HollowRSSPerHost = m.HollowRSS / int64(len(hosts))
		m.OVSDBRSSPerHost = m.OVSDBRSSTotal / int64(len(hosts))
		m.OVSDBPSSPerHost = m.OVSDBPSSTotal / int64(len(hosts))
		writeJSON(w, m)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
