package evpn

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// collector reports the speaker's sessions and routes at scrape time.
type collector struct {
	s *Speaker
}

var (
	descUp = prometheus.NewDesc("brtun_bgp_session_established",
		"1 when the BGP session with the peer is established, else 0.", []string{"peer"}, nil)
	descRoutes = prometheus.NewDesc("brtun_bgp_peer_routes",
		"EVPN routes per peer, by direction (received, accepted, advertised).", []string{"peer", "direction"}, nil)
	descExported = prometheus.NewDesc("brtun_bgp_routes_exported",
		"EVPN routes the speaker originates (type-2 and type-3).", nil, nil)
	descImported = prometheus.NewDesc("brtun_bgp_routes_imported",
		"Remote VTEPs and MACs imported into EVPN networks, by kind (vtep, mac).", []string{"kind"}, nil)
	descRelists = prometheus.NewDesc("brtun_bgp_table_relists_total",
		"Full listings of GoBGP's EVPN table (at start and at every End-of-RIB); between them the import follows best-path events.", nil, nil)
	descUpdates = prometheus.NewDesc("brtun_bgp_table_updates_total",
		"Remote routes of GoBGP's EVPN table added, changed or removed by best-path events.", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descUp
	ch <- descRoutes
	ch <- descExported
	ch <- descImported
	ch <- descRelists
	ch <- descUpdates
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if peers, err := c.s.Peers(ctx); err == nil {
		for _, p := range peers {
			up := 0.0
			if p.State == "established" {
				up = 1
			}
			a := p.Address.String()
			ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, a)
			ch <- prometheus.MustNewConstMetric(descRoutes, prometheus.GaugeValue, float64(p.Received), a, "received")
			ch <- prometheus.MustNewConstMetric(descRoutes, prometheus.GaugeValue, float64(p.Accepted), a, "accepted")
			ch <- prometheus.MustNewConstMetric(descRoutes, prometheus.GaugeValue, float64(p.Advertised), a, "advertised")
		}
	}
	c.s.mu.Lock()
	exported := len(c.s.advertised)
	st := c.s.state
	c.s.mu.Unlock()
	var vteps, macs int
	for _, n := range st.Imported.Networks {
		vteps += len(n.VTEPs)
		macs += len(n.MACs)
	}
	ch <- prometheus.MustNewConstMetric(descExported, prometheus.GaugeValue, float64(exported))
	ch <- prometheus.MustNewConstMetric(descImported, prometheus.GaugeValue, float64(vteps), "vtep")
	ch <- prometheus.MustNewConstMetric(descImported, prometheus.GaugeValue, float64(macs), "mac")
	ch <- prometheus.MustNewConstMetric(descRelists, prometheus.CounterValue, float64(c.s.relists.Load()))
	ch <- prometheus.MustNewConstMetric(descUpdates, prometheus.CounterValue, float64(c.s.updates.Load()))
}
