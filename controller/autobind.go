package controller

import (
	"context"

	"go.uber.org/zap"

	"github.com/brtun/brtun/ovsdb"
	"github.com/brtun/brtun/topology"
)

// autobind registers a port for every interface an operator marked on this
// host's br-int with external_ids:brtun-network=NAME that no port binds yet,
// the way OVN binds an interface by its iface-id. The port is named by
// external_ids:brtun-port (else the interface name) and takes the MAC OVSDB
// reports, with port security when that MAC is external_ids:attached-mac
// (mac_in_use is the host side's of a tap or veth, not the VM's); writing it to the store starts the usual reconcile, which tags
// the interface. A mark that cannot become a port (unknown network, a name
// already taken, ...) is logged once per interface and cause.
func (c *Controller) autobind(ctx context.Context, hs *hostState, snap topology.Snapshot, in hostInputs, marked []ovsdb.MarkedInterface) {
	if len(marked) == 0 {
		return
	}
	host := in.host.Name
	bound := in.boundInterfaces()
	log := c.log.With(zap.String("host", host))
	for _, m := range marked {
		if bound[m.Interface] {
			continue
		}
		var err error
		switch {
		case m.Bridge != BrInt:
			err = errNotOnBrInt
		default:
			if _, ok := snap.Network(m.Network); !ok {
				err = errUnknownNetwork
				break
			}
			// Port security needs the VM's MAC: only attached-mac is that.
			p := topology.Port{Network: m.Network, Name: m.Port, Host: host, Interface: m.Interface, MAC: m.MAC, PortSecurityEnabled: m.MACAttached}
			if _, _, err = c.opts.Store.CreatePort(ctx, p); err == nil {
				log.Info("bound an operator-marked interface", zap.String("interface", m.Interface),
					zap.String("network", m.Network), zap.String("port", m.Port))
				continue
			}
		}
		if hs.autobind.first(m, err) {
			log.Warn("cannot bind an operator-marked interface", zap.String("interface", m.Interface),
				zap.String("network", m.Network), zap.String("port", m.Port), zap.Error(err))
		}
	}
}

// autobindLog remembers, per interface, the last mark that could not be
// bound and why, so that each is logged once. It belongs to the host's
// reconcile, the only caller of autobind.
type autobindLog struct{ last map[string]string }

func newAutobindLog() *autobindLog { return &autobindLog{last: map[string]string{}} }

// first reports whether err is new for m's interface, and remembers it.
func (l *autobindLog) first(m ovsdb.MarkedInterface, err error) bool {
	key := m.Network + "\x00" + err.Error()
	if l.last[m.Interface] == key {
		return false
	}
	l.last[m.Interface] = key
	return true
}

type autobindError string

func (e autobindError) Error() string { return string(e) }

const (
	errNotOnBrInt     autobindError = "the interface is not on br-int"
	errUnknownNetwork autobindError = "no such network"
)
