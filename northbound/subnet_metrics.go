package northbound

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/brtun/brtun/topology"
)

// subnetScrapeTimeout bounds the store read of one scrape.
const subnetScrapeTimeout = 2 * time.Second

// subnetCollector reports how full each subnet's allocation pools are, read
// from the store at scrape time, so that a pool running out shows before
// port creates answer 409.
type subnetCollector struct {
	store topology.Store
	log   *zap.Logger
	size  *prometheus.Desc
	used  *prometheus.Desc
}

func newSubnetCollector(store topology.Store, log *zap.Logger) *subnetCollector {
	labels := []string{"network", "subnet"}
	return &subnetCollector{
		store: store,
		log:   log,
		size: prometheus.NewDesc("brtun_subnet_pool_addresses", "Addresses in the allocation pools of a subnet.",
			labels, nil),
		used: prometheus.NewDesc("brtun_subnet_pool_used_addresses", "Addresses of a subnet's allocation pools that ports hold.",
			labels, nil),
	}
}

func (c *subnetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.size
	ch <- c.used
}

func (c *subnetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), subnetScrapeTimeout)
	defer cancel()
	snap, err := c.store.Snapshot(ctx)
	if err != nil {
		c.log.Debug("subnet metrics: cannot read the store", zap.Error(err))
		return
	}
	for _, u := range topology.SubnetsUsage(snap) {
		ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, u.PoolSize, u.Network, u.Name)
		ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(u.PoolUsed), u.Network, u.Name)
	}
}
