// Package northbound is brtun's REST API: it validates requests, writes the
// desired state to a topology.Store and reports live status from a
// Controller. It never talks to switches itself.
package northbound

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/brtun/brtun/topology"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Bridge names brtun manages on every host.
const (
	BridgeInt = topology.BridgeInt
	BridgeTun = topology.BridgeTun
)

// Connection states reported in HostStatus and BridgeStatus.
const (
	Connected    = "connected"
	Disconnected = "disconnected"
)

// Port states reported in the port view.
const (
	PortPending = "pending" // the interface is not (yet) on the host's br-int
	PortBound   = "bound"   // the interface is on br-int and has an ofport
	PortError   = "error"   // the host's OVSDB cannot take the binding; see the port's message
)

// Controller is the live side of brtun as the API needs it. All methods
// must be safe for concurrent use.
type Controller interface {
	// HostStatus reports the OVSDB connection of a host and its bridges.
	// Bridges missing from the map are reported as disconnected.
	HostStatus(host string) HostStatus
	// PortBound reports whether iface exists on host's br-int with an ofport.
	PortBound(host, iface string) bool
	// PortError is why host's OVSDB cannot take the binding of iface (an
	// interface on another bridge, say), "" when nothing is known against it.
	PortError(host, iface string) string
	// WaitApplied blocks until every bridge touched by the change of
	// revision rev has applied rev (or a later revision), returning nil, nil.
	// When ctx ends first it returns the bridges that did not apply it
	// ("HOST/BRIDGE"; a disconnected bridge counts as not applied) and ctx.Err().
	WaitApplied(ctx context.Context, rev uint64) (notApplied []string, err error)
	// DumpFlows reads the flows of bridge on host from the switch itself;
	// table -1 means every table.
	DumpFlows(ctx context.Context, host, bridge string, table int) ([]FlowEntry, error)
}

// HostStatus is the live state of one host.
type HostStatus struct {
	OVSDB   string                  `json:"ovsdb"` // Connected or Disconnected
	Bridges map[string]BridgeStatus `json:"bridges"`
}

// BridgeStatus is the live state of one bridge of a host.
type BridgeStatus struct {
	DatapathID      string `json:"datapath_id"`
	OpenFlow        string `json:"openflow"`         // Connected or Disconnected
	AppliedRevision uint64 `json:"applied_revision"` // last store revision fully installed
	// Master names the brtun replica that masters the bridge when several
	// replicas share an etcd store (empty with one replica).
	Master string `json:"master,omitempty"`
}

// FlowEntry is one flow as read from a switch.
type FlowEntry struct {
	Table    uint8
	Priority uint16
	Cookie   uint64
	Match    string // ovs-ofctl syntax, empty for match-all
	Actions  string // ovs-ofctl syntax
	NPackets uint64
	NBytes   uint64
	Duration time.Duration
	Owner    string // decoded from the cookie: "pipeline", "learned", "port:NAME", ...
}

// Options configures the API.
type Options struct {
	Store topology.Store // required
	// Controller reports live status. nil means no controller: everything
	// is disconnected, ports are pending and ?wait always times out.
	Controller  Controller
	Logger      *zap.Logger   // nil: no logging
	UnderlayMTU int           // underlay MTU used for the networks' "mtu"; default 1500
	MaxWait     time.Duration // largest ?wait accepted; default 60s
	// Metrics registers the API's request metrics; nil records none.
	Metrics prometheus.Registerer
	// Cluster reports the replicas for GET /v1/cluster; nil answers 503.
	Cluster Cluster
	// BGP reports BGP sessions; nil: sessions show state "disabled".
	BGP BGP
	// Tracer walks packets for GET .../ports/{port}/trace; nil answers 503.
	Tracer Tracer
}

// DefaultUnderlayMTU is the underlay MTU assumed when Options leaves it 0.
const DefaultUnderlayMTU = 1500

// maxBodyBytes is the largest request body accepted.
const maxBodyBytes = 1 << 20

// API serves the REST API. Create it with New.
type API struct {
	store       topology.Store
	ctrl        Controller
	log         *zap.Logger
	underlayMTU int
	maxWait     time.Duration
	router      *mux.Router
	metrics     *apiMetrics // nil: no metrics
	cluster     Cluster     // nil: GET /v1/cluster answers 503
	bgp         BGP         // nil: no BGP speaker
	tracer      Tracer      // nil: traces answer 503
}

// New validates opts and builds the API's routes.
func New(opts Options) (*API, error) {
	if opts.Store == nil {
		return nil, errors.New("northbound: a Store is required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.UnderlayMTU == 0 {
		opts.UnderlayMTU = DefaultUnderlayMTU
	}
	if opts.UnderlayMTU < 576 || opts.UnderlayMTU > 65535 {
		return nil, fmt.Errorf("northbound: underlay MTU %d out of range 576..65535", opts.UnderlayMTU)
	}
	if opts.MaxWait == 0 {
		opts.MaxWait = 60 * time.Second
	}
	a := &API{
		store:       opts.Store,
		ctrl:        opts.Controller,
		log:         opts.Logger.Named("northbound"),
		underlayMTU: opts.UnderlayMTU,
		maxWait:     opts.MaxWait,
		cluster:     opts.Cluster,
		bgp:         opts.BGP,
		tracer:      opts.Tracer,
	}
	if opts.Metrics != nil {
		a.metrics = newAPIMetrics(opts.Metrics)
		opts.Metrics.MustRegister(newSubnetCollector(opts.Store, a.log))
	}
	a.router = a.routes()
	return a, nil
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.router.ServeHTTP(w, r)
}

func (a *API) routes() *mux.Router {
	// Match the path as sent: no redirect of "..", "." or "//" to a cleaned
	// path (a DELETE of /v1/networks/x/ports/../../x must not become a GET
	// of /v1/networks/x), and an escaped "/" stays inside its segment
	// (/v1/hosts/h1%2Fflows names host "h1%2Fflows", not h1's flows).
	// Valid names never need escaping, so they are unaffected.
	r := mux.NewRouter().SkipClean(true).UseEncodedPath()
	r.Use(a.measure, a.logAndRecover, a.readRevision)
	r.NotFoundHandler = a.measure(a.logAndRecover(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, apiErr(http.StatusNotFound, codeNotFound, "no such resource: %s", topology.Clip(r.URL.Path)))
	})))
	router := r
	r.MethodNotAllowedHandler = a.measure(a.logAndRecover(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		allowed := allowedMethods(router, r)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		a.writeError(w, r, apiErr(http.StatusMethodNotAllowed, codeMethodNotAllowed, "method %s not allowed on %s (allowed: %s)",
			topology.Clip(r.Method), topology.Clip(r.URL.Path), strings.Join(allowed, ", ")))
	})))

	r.HandleFunc("/healthz", a.healthz).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/ui", a.ui).Methods(http.MethodGet)
	r.HandleFunc("/v1/openapi.json", a.openAPI).Methods(http.MethodGet)
	r.HandleFunc("/v1/cluster", a.getCluster).Methods(http.MethodGet)

	// Every route on the one router (no subrouter), so 405 works for all of
	// them. Each object type is a resource: POST and GET on its collection,
	// GET, PATCH and DELETE on one object (resource.go).
	register(r, a, a.hostResource())
	register(r, a, a.networkResource())
	register(r, a, a.subnetResource())
	register(r, a, a.remoteVTEPResource())
	register(r, a, a.bgpPeerResource())
	ports := a.portResource()
	register(r, a, ports)

	r.HandleFunc("/v1/hosts/{host}/flows", a.dumpFlows).Methods(http.MethodGet)
	r.HandleFunc("/v1/networks/{network}/vteps", a.listVTEPs).Methods(http.MethodGet)
	r.HandleFunc("/v1/ports", ports.listHandler(a)).Methods(http.MethodGet)
	r.HandleFunc("/v1/networks/{network}/ports/{port}", a.updatePort).Methods(http.MethodPut)
	r.HandleFunc("/v1/networks/{network}/ports/{port}/trace", a.tracePort).Methods(http.MethodGet)
	return r
}

// allowedMethods lists, sorted, the methods of every route of router whose
// path matches r's: the Allow header of a 405 answer.
func allowedMethods(router *mux.Router, r *http.Request) []string {
	var allowed []string
	_ = router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		methods, err := route.GetMethods()
		if err != nil {
			return nil // a route without methods never answers 405
		}
		for _, m := range methods {
			probe := r.WithContext(r.Context()) // a shallow copy
			probe.Method = m
			if !slices.Contains(allowed, m) && route.Match(probe, &mux.RouteMatch{}) {
				allowed = append(allowed, m)
			}
		}
		return nil
	})
	slices.Sort(allowed)
	return allowed
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// logAndRecover logs every request and turns a handler panic into a 500.
func (a *API) logAndRecover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				a.log.Error("handler panic", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Any("panic", p), zap.Stack("stack"))
				if rec.status == 0 {
					a.writeError(rec, r, apiErr(http.StatusInternalServerError, codeInternal, "internal error"))
				}
			}
			a.log.Debug("request", zap.String("method", r.Method), zap.String("path", r.URL.Path),
				zap.Int("status", rec.status), zap.Duration("took", time.Since(start)))
		}()
		next.ServeHTTP(rec, r)
	})
}
