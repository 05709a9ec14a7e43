package northbound

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
)

// FlowView is one flow as GET /v1/hosts/{host}/flows shows it.
type FlowView struct {
	Table     uint8   `json:"table"`
	Priority  uint16  `json:"priority"`
	Cookie    string  `json:"cookie"` // "0x..." as ovs-ofctl prints it
	Match     string  `json:"match"`
	Actions   string  `json:"actions"`
	NPackets  uint64  `json:"n_packets"`
	NBytes    uint64  `json:"n_bytes"`
	DurationS float64 `json:"duration_s"`
	Owner     string  `json:"owner"`
}

// FlowList is the body of GET /v1/hosts/{host}/flows.
type FlowList struct {
	Flows []FlowView `json:"flows"`
}

// dumpFlows serves GET /v1/hosts/{host}/flows?bridge=br-tun&table=N&format=json|text.
func (a *API) dumpFlows(w http.ResponseWriter, r *http.Request) {
	host := mux.Vars(r)["host"]
	if err := checkQuery(r, "bridge", "table", "format"); err != nil {
		a.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	bridge := q.Get("bridge")
	if bridge == "" {
		bridge = BridgeTun
	}
	if bridge != BridgeTun && bridge != BridgeInt {
		a.writeError(w, r, apiErr(http.StatusBadRequest, codeInvalidQuery, "bridge=%q: want %s or %s", bridge, BridgeTun, BridgeInt))
		return
	}
	table := -1
	if s := q.Get("table"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 254 {
			a.writeError(w, r, apiErr(http.StatusBadRequest, codeInvalidQuery, "table=%q: want a table number 0..254", s))
			return
		}
		table = n
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "text" {
		a.writeError(w, r, apiErr(http.StatusBadRequest, codeInvalidQuery, "format=%q: want json or text", format))
		return
	}
	if _, err := a.store.GetHost(r.Context(), host); err != nil {
		a.writeError(w, r, err)
		return
	}
	if a.ctrl == nil {
		a.writeError(w, r, apiErr(http.StatusServiceUnavailable, codeUnavailable, "no controller is running: cannot read flows of %s/%s", host, bridge))
		return
	}
	entries, err := a.ctrl.DumpFlows(r.Context(), host, bridge, table)
	if err != nil {
		a.writeError(w, r, apiErr(http.StatusServiceUnavailable, codeUnavailable, "read flows of %s/%s: %v", host, bridge, err))
		return
	}
	slices.SortStableFunc(entries, func(x, y FlowEntry) int {
		if x.Table != y.Table {
			return int(x.Table) - int(y.Table)
		}
		return int(y.Priority) - int(x.Priority)
	})
	if format == "text" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		for _, e := range entries {
			_, _ = fmt.Fprintln(w, ofctlLine(e))
		}
		return
	}
	list := FlowList{Flows: make([]FlowView, 0, len(entries))}
	for _, e := range entries {
		list.Flows = append(list.Flows, FlowView{
			Table: e.Table, Priority: e.Priority, Cookie: fmt.Sprintf("0x%x", e.Cookie),
			Match: e.Match, Actions: e.Actions, NPackets: e.NPackets, NBytes: e.NBytes,
			DurationS: e.Duration.Seconds(), Owner: e.Owner,
		})
	}
	writeJSON(w, http.StatusOK, list)
}

// ofctlLine renders e the way `ovs-ofctl -O OpenFlow13 dump-flows` prints it.
func ofctlLine(e FlowEntry) string {
	var b strings.Builder
	fmt.Fprintf(&b, " cookie=0x%x, duration=%.3fs, table=%d, n_packets=%d, n_bytes=%d, priority=%d",
		e.Cookie, e.Duration.Seconds(), e.Table, e.NPackets, e.NBytes, e.Priority)
	if e.Match != "" {
		b.WriteString("," + e.Match)
	}
	b.WriteString(" actions=" + e.Actions)
	return b.String()
}
