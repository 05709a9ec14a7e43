package northbound

import (
	"context"
	"net/http"
)

// Cluster reports the brtun replicas that share the desired state.
type Cluster interface {
	ClusterStatus(ctx context.Context) (ClusterStatus, error)
}

// ClusterStatus is the answer of GET /v1/cluster.
type ClusterStatus struct {
	// Store is where the desired state lives: "bolt" (one replica) or
	// "etcd" (replicas share it).
	Store string `json:"store"`
	// Self is the name of the replica that answered.
	Self string `json:"self"`
	// Replicas lists the replicas, by name.
	Replicas []ReplicaStatus `json:"replicas"`
	// Masters maps every bridge with a master ("HOST/BRIDGE") to the
	// replica that masters it.
	Masters map[string]string `json:"masters"`
}

// ReplicaStatus is one replica of the cluster.
type ReplicaStatus struct {
	Name string `json:"name"`
	API  string `json:"api,omitempty"` // its --api-listen
	// Healthy: the replica holds a live etcd lease (always, with bolt). A
	// replica that died or lost etcd drops out of the list once its lease
	// expires; the answering replica lists itself unhealthy meanwhile.
	Healthy bool `json:"healthy"`
	Bridges int  `json:"bridges"` // how many bridges it masters
}

func (a *API) getCluster(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	if a.cluster == nil {
		a.writeError(w, r, apiErr(http.StatusServiceUnavailable, codeUnavailable, "no cluster status: brtun runs without a controller"))
		return
	}
	st, err := a.cluster.ClusterStatus(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
