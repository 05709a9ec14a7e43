package evpn

import (
	"context"
	"fmt"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"go.uber.org/zap"
)

// The speaker keeps a copy of the remote routes of GoBGP's EVPN table (the
// best path of each destination) up to date from GoBGP's best-path watch
// events, so a reconcile never lists and decodes the whole table: a burst
// of routes is decoded once, as it arrives, and everything queued is
// applied in one round. The table is listed again (a resync) at Start and
// at every peer's End-of-RIB; the events queued meanwhile are applied on
// top of the listing, in order, which is correct because each event sets a
// destination's whole state and a later change of that destination is
// queued after it.

// ribUpdate is a destination's new state from a watch event: its best path
// is the remote route r (ok), or there is no remote route any more (gone,
// or our own route is the best).
type ribUpdate struct {
	key string // the NLRI, as GoBGP prints a destination
	r   received
	ok  bool
}

// updatesOf decodes the paths of a best-path event. A path whose NLRI does
// not decode cannot be told apart from the others: resync is then true, and
// the next round lists the table.
func updatesOf(log *zap.Logger, paths []*api.Path) (ups []ribUpdate, resync bool) {
	for _, p := range paths {
		if p.Nlri == nil || p.Family.GetAfi() != evpnFamily.Afi || p.Family.GetSafi() != evpnFamily.Safi {
			continue // End-of-RIB markers, other families
		}
		key, r, ok, err := decodePath(p)
		if key == "" {
			log.Warn("undecodable route in a watch event; relisting the table", zap.Error(err))
			resync = true
			continue
		}
		if err != nil {
			log.Warn("undecodable route ignored", zap.String("nlri", key), zap.Error(err))
		}
		ups = append(ups, ribUpdate{key: key, r: r, ok: ok && err == nil && !p.IsWithdraw && remote(p)})
	}
	return ups, resync
}

// remote tells a path learned from a peer from one of our own.
func remote(p *api.Path) bool {
	return p.NeighborIp != "" && p.NeighborIp != "<nil>"
}

// decodePath decodes a path; key is its NLRI ("" when even that does not
// decode), ok false for anything but a type-2 or type-3 route. Nothing a
// peer sends can make it panic: a panic in GoBGP's decoders is an error.
func decodePath(p *api.Path) (key string, r received, ok bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			ok, err = false, fmt.Errorf("decode path: panic: %v", v)
		}
	}()
	nlri, err := apiutil.GetNativeNlri(p)
	if err != nil {
		return "", received{}, false, fmt.Errorf("decode NLRI: %w", err)
	}
	key = nlri.String()
	r, ok, err = parsePath(p)
	return key, r, ok, err
}

// listRIB lists GoBGP's EVPN table: the remote best path of every
// destination, keyed like ribUpdate.
func (s *Speaker) listRIB(ctx context.Context) (map[string]received, error) {
	out := map[string]received{}
	err := s.srv.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: evpnFamily}, func(d *api.Destination) {
		for _, p := range d.Paths {
			if !p.Best {
				continue
			}
			if p.IsWithdraw || !remote(p) {
				return
			}
			key, r, ok, err := decodePath(p)
			if err != nil {
				s.log.Warn("undecodable route ignored", zap.String("nlri", key), zap.Error(err))
				return
			}
			if ok {
				out[key] = r
			}
			return
		}
	})
	if err != nil {
		return nil, fmt.Errorf("bgp: list routes: %w", err)
	}
	return out, nil
}

// queue adds the updates of a watch event for the next round and wakes it.
func (s *Speaker) queue(ups []ribUpdate, resync bool) {
	if len(ups) == 0 && !resync {
		return
	}
	s.evMu.Lock()
	s.pending = append(s.pending, ups...)
	s.resync = s.resync || resync
	s.evMu.Unlock()
	s.poke()
}

// refresh brings s.rib up to date: a listing of the table first when a
// resync is due, then every queued update in order; changed tells whether
// s.rib may have changed. Called with recMu held.
func (s *Speaker) refresh(ctx context.Context) (changed bool, err error) {
	s.evMu.Lock()
	relist := s.resync
	s.resync = false
	s.evMu.Unlock()
	if relist {
		rib, err := s.listRIB(ctx)
		if err != nil {
			s.evMu.Lock()
			s.resync = true
			s.evMu.Unlock()
			return false, err
		}
		s.rib = rib
		s.relists.Add(1)
	}
	s.evMu.Lock()
	ups := s.pending
	s.pending = nil
	s.evMu.Unlock()
	var n uint64
	for _, u := range ups {
		if u.ok {
			s.rib[u.key] = u.r
			n++
		} else if _, had := s.rib[u.key]; had {
			delete(s.rib, u.key)
			n++
		}
	}
	s.updates.Add(n)
	return relist || n > 0, nil
}
