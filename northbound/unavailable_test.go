package northbound

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/brtun/brtun/topology"
)

// downStore is a Store whose network writes fail the way the etcd store's
// do when etcd cannot be reached (a request timed out).
type downStore struct {
	topology.Store
}

func (downStore) CreateNetwork(context.Context, topology.Network) (topology.Network, uint64, error) {
	return topology.Network{}, 0, fmt.Errorf("create network %q: etcd commit: %w: %w", "red", topology.ErrUnavailable, context.DeadlineExceeded)
}

// TestStoreUnavailableIs503: a write the store could not make because etcd
// is unreachable answers 503 unavailable naming the store; other writes
// (the control) go through.
func TestStoreUnavailableIs503(t *testing.T) {
	a := newTestAPI(t, nil, func(o *Options) { o.Store = downStore{Store: o.Store} })
	r := a.must("POST", "/v1/networks", `{"name":"red","type":"vxlan"}`, http.StatusServiceUnavailable)
	assert.Equal(t, codeUnavailable, r.errorCode(t))
	assert.Contains(t, string(r.body), "state store (etcd) cannot be reached")
	assert.Contains(t, string(r.body), "nothing was stored")
	a.must("POST", "/v1/hosts", `{"name":"h9","ovsdb":"tcp:198.51.100.9:6640","tunnel_ip":"192.0.2.9"}`, http.StatusCreated)
}
