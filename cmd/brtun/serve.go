package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os/signal"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/brtun/brtun/controller"
	"github.com/brtun/brtun/northbound"
	"github.com/brtun/brtun/ofswitch"
	"github.com/brtun/brtun/topology"
)

type serveOptions struct {
	apiListen         string
	openflowListen    string
	openflowAdvertise string
	dataDir           string
	underlayMTU       int
	logLevel          string
	driftInterval     time.Duration
	flowMonitor       bool
	macLearnLimit     int
	sourceRate        int // --appliance-source-rate
	sourceBurst       int // --appliance-source-burst
	dhcp              dhcpOptions
	security          securityOptions
	store             storeOptions
	bgp               bgpOptions
	pprof             bool
	apiBodyTimeout    time.Duration
	tunnelPorts       string
}

func newServeCommand() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the brtun controller and its REST API",
		Long: `Run the brtun controller: the REST API (and /metrics), the OpenFlow listener
switches connect to, and the reconciler that keeps every registered host's
br-int and br-tun as the desired state says. State lives in a bbolt file in
--data-dir, or with --store etcd in etcd, shared by several replicas that
split the switches between them (docs/operations.md). Every flag --x-y can also be set with the environment variable
BRTUN_X_Y; a flag on the command line wins.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.apiListen, "api-listen", "127.0.0.1:8080", "REST API listen address")
	f.StringVar(&o.openflowListen, "openflow-listen", "tcp:0.0.0.0:6653", "OpenFlow listen address for switches (tcp:IP:PORT, or ssl:IP:PORT with --openflow-tls-*)")
	f.StringVar(&o.openflowAdvertise, "openflow-advertise", "", "controller target(s) written into managed bridges, comma-separated (empty: the operator runs ovs-vsctl set-controller)")
	f.StringVar(&o.dataDir, "data-dir", "/var/lib/brtun", "directory of the state file")
	f.IntVar(&o.underlayMTU, "underlay-mtu", northbound.DefaultUnderlayMTU, "MTU of the underlay network (networks report the VM MTU that fits)")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.DurationVar(&o.driftInterval, "drift-interval", controller.DefaultDriftInterval, "how often each host gets its periodic drift check: a full reconcile with a dump of its bridges' flows (the hosts' checks are spread over the interval); "+
		"flows changed by others are repaired at once when --flow-monitor is on, so this is the safety net (switches without flow monitors, OVSDB columns brtun does not watch) and how fresh the learned-MAC and port-security drop metrics are")
	f.BoolVar(&o.flowMonitor, "flow-monitor", true, "ask every bridge brtun masters to report flow changes (OpenFlow flow monitor): a change by anyone else runs the host's drift check at once; false leaves drift to the periodic check")
	f.IntVar(&o.macLearnLimit, "mac-learn-limit", controller.DefaultMACLearnLimit, "flows br-tun table 20 (registered remote ports and learned MACs) may hold on each host; when full, OVS evicts learned MACs of the network holding the most; also br-int's MAC table size (0: unbounded)")
	f.IntVar(&o.sourceRate, "appliance-source-rate", controller.DefaultSourceMeterRate, "packets per second a port without port security (an appliance) may send from source MACs other than its own and its allowed pairs' (each is a MAC every host of the network learns in OVS's slow path); one OpenFlow meter per port drops the excess (0: no meter)")
	f.IntVar(&o.sourceBurst, "appliance-source-burst", controller.DefaultSourceMeterBurst, "burst size in packets of each appliance port's source meter (1..4294967295)")
	f.BoolVar(&o.pprof, "pprof", false, "serve Go profiles at /debug/pprof/ on the API listener (behind the API token when one is set, even with --api-read-open)")
	f.StringVar(&o.tunnelPorts, "tunnel-ports", string(topology.PerPeerTunnels), "how br-tun reaches the other hosts: per-peer (a tunnel port per host and tunnel type) "+
		"or flow (one port per tunnel type with remote_ip=flow: flows set tun_dst and check tun_src, and a host joining changes no other host's OVSDB; IPv4 tunnel IPs only)")
	f.DurationVar(&o.apiBodyTimeout, "api-body-timeout", northbound.DefaultBodyTimeout, "longest a client may take to send a request body once its headers are read; a slower one is answered 408 and disconnected")
	o.dhcp.addFlags(f)
	o.security.addFlags(f)
	o.store.addFlags(f)
	o.bgp.addFlags(f)
	readsEnv(cmd)
	withoutClientFlags(cmd)
	return cmd
}

func runServe(ctx context.Context, o serveOptions) error {
	level, err := zap.ParseAtomicLevel(o.logLevel)
	if err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	if o.driftInterval <= 0 {
		return fmt.Errorf("--drift-interval must be positive, got %s", o.driftInterval)
	}
	if o.apiBodyTimeout <= 0 {
		return fmt.Errorf("--api-body-timeout must be positive, got %s", o.apiBodyTimeout)
	}
	dhcpOpts, err := o.dhcp.check(o.underlayMTU)
	if err != nil {
		return err
	}
	if o.macLearnLimit < 0 {
		return fmt.Errorf("--mac-learn-limit must be 0 (unbounded) or positive, got %d", o.macLearnLimit)
	}
	if o.sourceRate < 0 || o.sourceRate > math.MaxUint32 || o.sourceBurst < 1 || o.sourceBurst > math.MaxUint32 {
		return fmt.Errorf("--appliance-source-rate must be 0 (no meter) or 1..4294967295 and --appliance-source-burst 1..4294967295, got %d and %d", o.sourceRate, o.sourceBurst)
	}
	tunnelPorts, err := topology.ParseTunnelPortMode(o.tunnelPorts)
	if err != nil {
		return fmt.Errorf("--tunnel-ports: %w", err)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = level
	log, err := cfg.Build()
	if err != nil {
		return fmt.Errorf("build logger: %w", err)
	}
	defer func() { _ = log.Sync() }()
	sec, err := o.security.load(o.openflowListen)
	if err != nil {
		return err
	}
	sec.warn(log, o.apiListen)

	store, err := o.store.open(o.dataDir, o.apiListen, log, topology.WithMACLearnLimit(o.macLearnLimit))
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("close store", zap.Error(err))
		}
	}()

	if err := checkTunnelPorts(ctx, store, tunnelPorts); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), newBuildInfo())
	ctrl, err := controller.New(controller.Options{
		Store:             store,
		Logger:            log,
		Metrics:           controller.NewMetrics(reg),
		ControllerTargets: splitList(o.openflowAdvertise),
		DriftInterval:     o.driftInterval,
		NoFlowMonitor:     !o.flowMonitor,
		MACLearnLimit:     o.macLearnLimit,
		OVSDBTLS:          sec.ovsdbTLS,
		Mastership:        store.mastership(),
		DHCP:              dhcpOpts,
		TunnelPorts:       tunnelPorts,
		SourceMeter:       controller.SourceMeterOptions{Rate: o.sourceRate, Burst: o.sourceBurst},
	})
	if err != nil {
		return err
	}
	ofl, err := ofswitch.Listen(ofswitch.ListenerOptions{
		Options: ofswitch.Options{Logger: log, OnMessage: func(c *ofswitch.Conn, m ofswitch.Message) {
			if m.Type() == ofswitch.TypePacketIn {
				ctrl.PacketIn(controller.NewSwitch(c), m)
			}
		}},
		Address:   o.openflowListen,
		TLSConfig: sec.openflowTLS,
		OnConnect: func(c *ofswitch.Conn) { ctrl.AddSwitch(controller.NewSwitch(c)) },
	})
	if err != nil {
		return fmt.Errorf("--openflow-listen: %w", err)
	}
	bgp, err := startBGP(ctx, o.bgp, store, store.leads(), log, reg)
	if err != nil {
		_ = ofl.Close()
		return err
	}
	apiOpts := northbound.Options{
		Store: store, Controller: apiController{ctrl}, Logger: log, UnderlayMTU: o.underlayMTU,
		Metrics: reg, Cluster: store, Tracer: ctrl,
	}
	if bgp != nil {
		apiOpts.BGP = bgp
	}
	api, err := northbound.New(apiOpts)
	if err != nil {
		if bgp != nil {
			bgp.speaker.Stop()
		}
		return err
	}
	mux := http.NewServeMux()
	auth := northbound.RequireToken(northbound.AuthOptions{Token: sec.apiToken, ViewerToken: sec.apiViewerToken,
		ReadOpen: sec.apiReadOpen, Logger: log})
	mux.Handle("/metrics", auth(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	if o.pprof {
		// Profiles show the process's memory and command line and cost CPU:
		// they are not reads --api-read-open opens.
		tokenAlways := northbound.RequireToken(northbound.AuthOptions{Token: sec.apiToken, Logger: log})
		mux.Handle("/debug/pprof/", tokenAlways(http.HandlerFunc(pprof.Index)))
		mux.Handle("/debug/pprof/cmdline", tokenAlways(http.HandlerFunc(pprof.Cmdline)))
		mux.Handle("/debug/pprof/profile", tokenAlways(http.HandlerFunc(pprof.Profile)))
		mux.Handle("/debug/pprof/symbol", tokenAlways(http.HandlerFunc(pprof.Symbol)))
		mux.Handle("/debug/pprof/trace", tokenAlways(http.HandlerFunc(pprof.Trace)))
	}
	mux.Handle("/", auth(api))
	ln, err := net.Listen("tcp", o.apiListen)
	if err != nil {
		if bgp != nil {
			bgp.speaker.Stop()
		}
		return fmt.Errorf("listen on --api-listen %s: %w", o.apiListen, err)
	}
	srv := &http.Server{
		Handler:           northbound.LimitBodyRead(o.apiBodyTimeout)(uncleanPathsToAPI(mux, auth(api))),
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, TLSConfig: sec.apiTLS,
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log.Info("brtun serving",
		zap.String("api", ln.Addr().String()), zap.Bool("api_tls", sec.apiTLS != nil), zap.Bool("api_token", sec.apiToken != ""),
		zap.String("openflow", ofl.Addr().String()), zap.Bool("openflow_tls", sec.openflowTLS != nil),
		zap.String("openflow_advertise", o.openflowAdvertise), zap.String("data_dir", o.dataDir))

	store.runCluster(ctx)
	errc := make(chan error, 4)
	go func() { errc <- ctrl.Run(ctx) }()
	bgpDone := make(chan struct{})
	if bgp != nil {
		go func() { defer close(bgpDone); errc <- bgp.run(ctx) }()
	} else {
		close(bgpDone)
	}
	go func() { errc <- ofl.Serve(ctx) }()
	go func() {
		serve := func() error { return srv.Serve(ln) }
		if sec.apiTLS != nil {
			serve = func() error { return srv.ServeTLS(ln, "", "") } // certificates from TLSConfig
		}
		if err := serve(); !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve REST API: %w", err)
		}
	}()
	select {
	case err = <-errc:
		stop() // a component ended early: take the rest down
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutCtx); serr != nil && err == nil {
		err = fmt.Errorf("shut down REST API: %w", serr)
	}
	_ = ofl.Close()
	<-bgpDone // the speaker closes its sessions (peers get a Cease)
	return err
}

// checkTunnelPorts refuses to start with flow-based tunnel ports while a
// registered host has an IPv6 tunnel IP: those ports carry IPv4 only.
func checkTunnelPorts(ctx context.Context, store topology.Store, mode topology.TunnelPortMode) error {
	if !mode.Flow() {
		return nil
	}
	hosts, err := store.ListHosts(ctx)
	if err != nil {
		return fmt.Errorf("--tunnel-ports flow: list hosts: %w", err)
	}
	for _, h := range hosts {
		if ip, err := netip.ParseAddr(h.TunnelIP); err == nil && !ip.Unmap().Is4() {
			return fmt.Errorf("--tunnel-ports flow: host %s has IPv6 tunnel IP %s, and flow-based tunnel ports carry IPv4 tunnel IPs only "+
				"(run with --tunnel-ports per-peer, or give the host an IPv4 tunnel IP)", h.Name, h.TunnelIP)
		}
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// apiController presents the controller to the REST API.
type apiController struct{ c *controller.Controller }

func connected(ok bool) string {
	if ok {
		return northbound.Connected
	}
	return northbound.Disconnected
}

func (a apiController) HostStatus(host string) northbound.HostStatus {
	st := a.c.HostStatus(host)
	out := northbound.HostStatus{OVSDB: connected(st.OVSDBConnected), Bridges: map[string]northbound.BridgeStatus{}}
	for name, b := range st.Bridges {
		out.Bridges[name] = northbound.BridgeStatus{
			DatapathID:      fmt.Sprintf("%016x", b.DatapathID),
			OpenFlow:        connected(b.OpenFlowConnected),
			AppliedRevision: b.AppliedRevision,
			Master:          b.Master,
		}
	}
	return out
}

func (a apiController) PortBound(host, iface string) bool   { return a.c.PortBound(host, iface) }
func (a apiController) PortError(host, iface string) string { return a.c.PortError(host, iface) }

func (a apiController) WaitApplied(ctx context.Context, rev uint64) ([]string, error) {
	return a.c.WaitApplied(ctx, rev)
}

func (a apiController) DumpFlows(ctx context.Context, host, bridge string, table int) ([]northbound.FlowEntry, error) {
	stats, err := a.c.DumpFlows(ctx, host, bridge, table)
	if err != nil {
		return nil, err
	}
	owner := a.c.Owners()
	out := make([]northbound.FlowEntry, len(stats))
	for i, s := range stats {
		out[i] = northbound.FlowEntry{
			Table: s.Flow.Table, Priority: s.Flow.Priority, Cookie: s.Flow.Cookie,
			Match: s.Flow.Match.String(), Actions: s.Flow.ActionsString(),
			NPackets: s.Packets, NBytes: s.Bytes, Duration: s.Duration,
			Owner: owner(s.Flow.Cookie),
		}
	}
	return out, nil
}

// uncleanPathsToAPI serves paths holding "//", "." or ".." segments with
// api directly and everything else with mux. http.ServeMux would answer such
// a path with a redirect to the cleaned path that keeps the method, so
// DELETE /v1/networks/x/ports/../../x would end up deleting network x. The
// API matches paths as sent and answers them with a JSON 404.
func uncleanPathsToAPI(mux, api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p != "/" && path.Clean(p) != strings.TrimSuffix(p, "/") {
			api.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}
