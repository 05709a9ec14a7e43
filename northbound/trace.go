package northbound

import (
	"context"
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/brtun/brtun/topology"
	"github.com/brtun/brtun/trace"
)

// Tracer walks a packet from a port through the flows the switches hold
// (the controller). Errors: a *trace.RequestError (the query describes no
// packet), trace.ErrNotBound, anything else when the switches cannot be
// read.
type Tracer interface {
	Trace(ctx context.Context, network, port string, req trace.Request) (trace.Result, error)
}

// TraceView is the body of GET /v1/networks/{network}/ports/{port}/trace.
type TraceView struct {
	Network string          `json:"network"`
	Port    string          `json:"port"`
	Host    string          `json:"host"`
	Kind    string          `json:"kind"` // unicast, arp, dhcp, broadcast
	Hops    []TraceHop      `json:"hops"`
	Reached []TraceEndpoint `json:"reached"`
}

// TraceHop is the packet's visit to one bridge.
type TraceHop struct {
	Host   string `json:"host"`
	Bridge string `json:"bridge"`
	InPort string `json:"in_port"`
	// Packet is the packet as it entered, as an ofproto/trace flow.
	Packet  string        `json:"packet"`
	From    int           `json:"from"` // index of the hop it came from, -1 for the first
	Lookups []TraceLookup `json:"lookups"`
	Outputs []TraceOutput `json:"outputs"`
	Dropped string        `json:"dropped,omitempty"`
	Notes   []string      `json:"notes,omitempty"`
}

// TraceLookup is one table lookup of a hop.
type TraceLookup struct {
	Table uint8  `json:"table"`
	Flow  string `json:"flow"`  // ovs-ofctl form; "" when no flow matched
	Owner string `json:"owner"` // as the flows route names it
}

// TraceOutput is one copy of the packet leaving a hop's bridge.
type TraceOutput struct {
	Port    string         `json:"port"`
	Next    int            `json:"next"` // index of the hop it enters, -1 when none
	Reached *TraceEndpoint `json:"reached,omitempty"`
	Note    string         `json:"note,omitempty"`
}

// TraceEndpoint is a port a packet reached.
type TraceEndpoint struct {
	Host      string `json:"host"`
	Network   string `json:"network"`
	Port      string `json:"port"`
	Interface string `json:"interface"`
}

// tracePort serves GET /v1/networks/{network}/ports/{port}/trace?packet=KIND&dst_mac=MAC&dst_ip=IP.
func (a *API) tracePort(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, "packet", "dst_mac", "dst_ip"); err != nil {
		a.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	req := trace.Request{Kind: trace.Kind(q.Get("packet")), DstMAC: q.Get("dst_mac"), DstIP: q.Get("dst_ip")}
	if req.Kind == "" {
		req.Kind = trace.Unicast
	}
	network, name := mux.Vars(r)["network"], mux.Vars(r)["port"]
	port, err := a.store.GetPort(r.Context(), network, name)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if a.tracer == nil {
		a.writeError(w, r, apiErr(http.StatusServiceUnavailable, codeUnavailable, "no controller is running: cannot read the switches"))
		return
	}
	res, err := a.tracer.Trace(r.Context(), network, name, req)
	var re *trace.RequestError
	switch {
	case errors.As(err, &re):
		a.writeError(w, r, apiErr(http.StatusBadRequest, codeInvalidQuery, "%s", re.Error()))
		return
	case errors.Is(err, trace.ErrNotBound):
		a.writeError(w, r, apiErr(http.StatusConflict, codeConflict, "port %s/%s is not bound on %s: a trace starts at its ofport", network, name, port.Host))
		return
	case err != nil:
		a.writeError(w, r, apiErr(http.StatusServiceUnavailable, codeUnavailable, "trace from %s/%s: %v", network, name, err))
		return
	}
	writeJSON(w, http.StatusOK, traceView(port, req.Kind, res))
}

func traceView(port topology.Port, kind trace.Kind, res trace.Result) TraceView {
	v := TraceView{Network: port.Network, Port: port.Name, Host: port.Host, Kind: string(kind),
		Hops: make([]TraceHop, 0, len(res.Hops)), Reached: make([]TraceEndpoint, 0, len(res.Reached))}
	for _, h := range res.Hops {
		hop := TraceHop{Host: h.Host, Bridge: h.Bridge, InPort: h.InPort, Packet: h.Packet, From: h.From,
			Lookups: make([]TraceLookup, 0, len(h.Lookups)), Outputs: make([]TraceOutput, 0, len(h.Outputs)),
			Dropped: h.Dropped, Notes: h.Notes}
		for _, l := range h.Lookups {
			hop.Lookups = append(hop.Lookups, TraceLookup(l))
		}
		for _, o := range h.Outputs {
			out := TraceOutput{Port: o.Port, Next: o.Next, Note: o.Note}
			if o.Reached != nil {
				e := TraceEndpoint(*o.Reached)
				out.Reached = &e
			}
			hop.Outputs = append(hop.Outputs, out)
		}
		v.Hops = append(v.Hops, hop)
	}
	for _, e := range res.Reached {
		v.Reached = append(v.Reached, TraceEndpoint(e))
	}
	return v
}
