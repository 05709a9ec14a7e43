package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"go.uber.org/zap"
)

// Steps of ADD at which a test can make the plugin pause (to kill it there).
const (
	stepVeth       = "veth"       // the veth pair exists
	stepPort       = "port"       // the brtun port exists too
	stepConfigured = "configured" // the container's interface is configured; the answer is next
)

// Time limits of the commands.
const (
	addTimeout   = 2 * time.Minute
	otherTimeout = time.Minute
	// defaultBindWait is how long ADD waits for brtun to bind the port.
	defaultBindWait = 30 * time.Second
)

// ipamExec runs the IPAM plugin a configuration delegates to.
type ipamExec interface {
	Add(ctx context.Context, plugin string, conf []byte) (types.Result, error)
	Check(ctx context.Context, plugin string, conf []byte) error
	Del(ctx context.Context, plugin string, conf []byte) error
	Status(ctx context.Context, plugin string, conf []byte) error
	GC(ctx context.Context, plugin string, conf []byte) error
}

// delegatedIPAM runs IPAM plugins found on CNI_PATH.
type delegatedIPAM struct{}

func (delegatedIPAM) Add(ctx context.Context, plugin string, conf []byte) (types.Result, error) {
	return invoke.DelegateAdd(ctx, plugin, conf, nil)
}

func (delegatedIPAM) Check(ctx context.Context, plugin string, conf []byte) error {
	return invoke.DelegateCheck(ctx, plugin, conf, nil)
}

func (delegatedIPAM) Del(ctx context.Context, plugin string, conf []byte) error {
	return invoke.DelegateDel(ctx, plugin, conf, nil)
}

func (delegatedIPAM) Status(ctx context.Context, plugin string, conf []byte) error {
	return invoke.DelegateStatus(ctx, plugin, conf, nil)
}

func (delegatedIPAM) GC(ctx context.Context, plugin string, conf []byte) error {
	return invoke.DelegateGC(ctx, plugin, conf, nil)
}

// plugin carries out the CNI commands.
type plugin struct {
	log  *zap.Logger
	dp   dataplane
	ipam ipamExec
	http *http.Client
	out  io.Writer // where ADD prints its result: stdout
	// bindWait is how long ADD waits for brtun to bind the port.
	bindWait time.Duration
	// pause is called at each step of ADD (a test hook; it returns at once
	// unless the test asked to pause at that step).
	pause func(step string)
}

func (p *plugin) client(conf *netConf) (*client, error) {
	tok, err := conf.token()
	if err != nil {
		return nil, err
	}
	return &client{base: conf.Server, token: tok, http: p.http}, nil
}

// undo holds what undoes the steps of an ADD so far.
type undo []func(context.Context) error

// undoTimeout bounds the undoing of a failed ADD (ADD's own deadline may
// be what failed it).
const undoTimeout = 30 * time.Second

// run undoes the steps backwards.
func (u undo) run(log *zap.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), undoTimeout)
	defer cancel()
	for i := len(u) - 1; i >= 0; i-- {
		if err := u[i](ctx); err != nil {
			log.Warn("undoing a failed ADD", zap.Error(err))
		}
	}
}

// Add creates the veth pair, registers its host end as a brtun port, waits
// until brtun bound it, gives the container's end the port's MAC,
// addresses, routes and the network's MTU, and prints the result. When a
// step fails, the steps done so far are undone.
func (p *plugin) Add(args *skel.CmdArgs) (err error) {
	conf, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	api, err := p.client(conf)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), addTimeout)
	defer cancel()
	att := newAttachment(args.ContainerID, args.IfName)
	log := p.log.With(zap.String("container", args.ContainerID), zap.String("ifname", args.IfName), zap.String("port", att.Port))

	nw, err := api.network(ctx, conf.Network)
	if err != nil {
		return fmt.Errorf("brtun-cni: network %q: %w", conf.Network, err)
	}

	var rollback undo
	defer func() {
		if err != nil {
			rollback.run(log)
		}
	}()

	var ipamRes *current.Result
	if conf.IPAM.Type != "" {
		r, err := p.ipam.Add(ctx, conf.IPAM.Type, args.StdinData)
		if err != nil {
			return fmt.Errorf("brtun-cni: ipam %s: %w", conf.IPAM.Type, err)
		}
		rollback = append(rollback, func(ctx context.Context) error { return p.ipam.Del(ctx, conf.IPAM.Type, args.StdinData) })
		if ipamRes, err = current.NewResultFromResult(r); err != nil {
			return fmt.Errorf("brtun-cni: ipam %s result: %w", conf.IPAM.Type, err)
		}
		if len(ipamRes.IPs) == 0 {
			return fmt.Errorf("brtun-cni: ipam %s returned no address", conf.IPAM.Type)
		}
	}

	// A host end of this name is a leftover of an earlier ADD of this
	// attachment that was killed before its DEL: remove it first.
	if err := p.dp.DeleteHostLink(att.HostIf); err != nil {
		return fmt.Errorf("brtun-cni: %w", err)
	}
	hostMAC, err := p.dp.CreateVeth(args.Netns, args.IfName, att.HostIf, nw.MTU)
	if err != nil {
		return fmt.Errorf("brtun-cni: %w", err)
	}
	rollback = append(rollback, func(context.Context) error { return p.dp.DeleteHostLink(att.HostIf) })
	p.pause(stepVeth)

	req := portRequest{
		Name: att.Port, Host: conf.Host, Interface: att.HostIf, DeviceID: args.ContainerID,
		Description: "brtun-cni ifname " + args.IfName, Tags: []string{cniTag},
	}
	var ipConfigs []*current.IPConfig
	var routes []*types.Route
	var dns types.DNS
	if ipamRes != nil {
		ipConfigs, routes, dns = ipamAddressing(ipamRes)
		req.IPs = portIPs(ipConfigs)
	}
	created, etag, err := api.createPort(ctx, conf.Network, req)
	if err != nil {
		return fmt.Errorf("brtun-cni: %w", err)
	}
	rollback = append(rollback, func(ctx context.Context) error { return api.deletePort(ctx, conf.Network, att.Port, etag) })
	p.pause(stepPort)
	if created.MAC == "" {
		return fmt.Errorf("brtun-cni: brtun gave port %s/%s no MAC", conf.Network, att.Port)
	}

	if _, _, err := api.port(ctx, conf.Network, att.Port, p.bindWait); err != nil {
		return fmt.Errorf("brtun-cni: waiting until port %s/%s is bound on host %s: %w", conf.Network, att.Port, conf.Host, err)
	}
	if err := p.dp.SetMAC(args.Netns, args.IfName, created.MAC); err != nil {
		return fmt.Errorf("brtun-cni: %w", err)
	}
	if ipamRes == nil && len(created.IPs) > 0 {
		subnets, err := api.subnets(ctx, conf.Network)
		if err != nil {
			return fmt.Errorf("brtun-cni: subnets of %q: %w", conf.Network, err)
		}
		if ipConfigs, routes, dns, err = brtunAddressing(created.IPs, subnets); err != nil {
			return fmt.Errorf("brtun-cni: port %s/%s: %w", conf.Network, att.Port, err)
		}
	}
	if !conf.DNS.IsEmpty() {
		dns = conf.DNS // the configuration's own DNS wins, as with other plugins
	}
	result := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: interfaces(att, hostMAC, created.MAC, args.Netns, nw.MTU),
		IPs:        ipConfigs,
		Routes:     routes,
		DNS:        dns,
	}
	if err := p.dp.Configure(args.Netns, args.IfName, result); err != nil {
		return fmt.Errorf("brtun-cni: %w", err)
	}
	p.pause(stepConfigured)
	answer, err := result.GetAsVersion(conf.CNIVersion)
	if err != nil {
		return fmt.Errorf("brtun-cni: result as CNI %s: %w", conf.CNIVersion, err)
	}
	return answer.PrintTo(p.out)
}

// Del removes the port from brtun, the veth pair (its host end, and with
// it the container's), and the IPAM allocation. Whatever is already gone is
// no error, so DEL can run any number of times, also after an ADD that
// failed or was killed half-way. A same-named port of another device, or
// on another host, is left alone.
func (p *plugin) Del(args *skel.CmdArgs) error {
	conf, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	api, err := p.client(conf)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), otherTimeout)
	defer cancel()
	att := newAttachment(args.ContainerID, args.IfName)
	if err := p.deletePort(ctx, api, conf.Network, conf.Host, att); err != nil {
		return fmt.Errorf("brtun-cni: %w", err)
	}
	if err := p.dp.DeleteHostLink(att.HostIf); err != nil {
		return fmt.Errorf("brtun-cni: %w", err)
	}
	if conf.IPAM.Type != "" {
		if err := p.ipam.Del(ctx, conf.IPAM.Type, args.StdinData); err != nil {
			return fmt.Errorf("brtun-cni: ipam %s: %w", conf.IPAM.Type, err)
		}
	}
	return nil
}

// deletePortTries bounds the read-then-delete of a port that keeps
// changing meanwhile.
const deletePortTries = 3

// deletePort deletes the attachment's port if it is there and belongs to
// the attachment's container on this host, guarded by the ETag it was read
// with.
func (p *plugin) deletePort(ctx context.Context, api *client, netName, host string, att attachment) error {
	for try := 0; try < deletePortTries; try++ {
		cur, etag, err := api.port(ctx, netName, att.Port, 0)
		if hasStatus(err, http.StatusNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if cur.DeviceID != att.ContainerID || cur.Host != host {
			p.log.Warn("not deleting a port of another device or host", zap.String("port", netName+"/"+att.Port),
				zap.String("device_id", cur.DeviceID), zap.String("port_host", cur.Host),
				zap.String("container", att.ContainerID), zap.String("host", host))
			return nil
		}
		err = api.deletePort(ctx, netName, att.Port, etag)
		if !hasStatus(err, http.StatusPreconditionFailed) {
			return err
		}
	}
	return fmt.Errorf("port %s/%s kept changing while it was being deleted", netName, att.Port)
}

// Check verifies the attachment against the previous result: the port
// exists, belongs to the container, sits on this host's interface and is
// bound, carries the result's addresses; the host end exists; the
// container's interface has the port's MAC, the network's MTU, and the
// result's addresses and routes.
func (p *plugin) Check(args *skel.CmdArgs) error {
	conf, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	if conf.PrevResult == nil {
		return fmt.Errorf("brtun-cni: CHECK needs a prevResult")
	}
	prev, err := current.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return fmt.Errorf("brtun-cni: prevResult: %w", err)
	}
	api, err := p.client(conf)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), otherTimeout)
	defer cancel()
	att := newAttachment(args.ContainerID, args.IfName)
	nw, err := api.network(ctx, conf.Network)
	if err != nil {
		return fmt.Errorf("brtun-cni: network %q: %w", conf.Network, err)
	}
	cur, _, err := api.port(ctx, conf.Network, att.Port, 0)
	if err != nil {
		return fmt.Errorf("brtun-cni: port %s/%s: %w", conf.Network, att.Port, err)
	}
	switch {
	case cur.DeviceID != args.ContainerID:
		return fmt.Errorf("brtun-cni: port %s/%s belongs to device %q, not %q", conf.Network, att.Port, cur.DeviceID, args.ContainerID)
	case cur.Host != conf.Host || cur.Interface != att.HostIf:
		return fmt.Errorf("brtun-cni: port %s/%s is on %s/%s, not %s/%s", conf.Network, att.Port, cur.Host, cur.Interface, conf.Host, att.HostIf)
	case cur.Status != portBound:
		return fmt.Errorf("brtun-cni: port %s/%s is %s, not bound", conf.Network, att.Port, cur.Status)
	}
	for _, ipc := range prev.IPs {
		if !slices.Contains(cur.IPs, ipc.Address.IP.String()) {
			return fmt.Errorf("brtun-cni: port %s/%s does not carry %s (it has %v)", conf.Network, att.Port, ipc.Address.IP, cur.IPs)
		}
	}
	if conf.IPAM.Type != "" {
		if err := p.ipam.Check(ctx, conf.IPAM.Type, args.StdinData); err != nil {
			return fmt.Errorf("brtun-cni: ipam %s: %w", conf.IPAM.Type, err)
		}
	}
	if err := p.dp.Check(args.Netns, args.IfName, att.HostIf, cur.MAC, nw.MTU, prev); err != nil {
		return fmt.Errorf("brtun-cni: %w", err)
	}
	return nil
}

// Status reports whether brtun answers for the network (and the IPAM
// plugin is ready): ADD cannot work otherwise.
func (p *plugin) Status(args *skel.CmdArgs) error {
	conf, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	api, err := p.client(conf)
	if err != nil {
		return types.NewError(types.ErrPluginNotAvailable, err.Error(), "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if _, err := api.network(ctx, conf.Network); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("brtun-cni: brtun at %s cannot serve network %q", conf.Server, conf.Network), err.Error())
	}
	if conf.IPAM.Type != "" {
		if err := p.ipam.Status(ctx, conf.IPAM.Type, args.StdinData); err != nil {
			return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("brtun-cni: ipam %s", conf.IPAM.Type), err.Error())
		}
	}
	return nil
}

// GC deletes this host's brtun-cni ports of the network that belong to no
// attachment the runtime still knows (cni.dev/valid-attachments), with
// their host ends, and lets the IPAM plugin collect its own.
func (p *plugin) GC(args *skel.CmdArgs) error {
	conf, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	api, err := p.client(conf)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), otherTimeout)
	defer cancel()
	valid := map[string]bool{}
	for _, a := range conf.ValidAttachments {
		valid[newAttachment(a.ContainerID, a.IfName).Port] = true
	}
	ports, err := api.ports(ctx, url.Values{"network": {conf.Network}, "host": {conf.Host}, "tags": {cniTag}})
	if err != nil {
		return fmt.Errorf("brtun-cni: list this host's ports: %w", err)
	}
	var errs []error
	for _, pt := range ports {
		if valid[pt.Name] {
			continue
		}
		p.log.Info("collecting a stale container port", zap.String("port", pt.Network+"/"+pt.Name), zap.String("device_id", pt.DeviceID))
		err := api.deletePort(ctx, pt.Network, pt.Name, etagOf(pt))
		if hasStatus(err, http.StatusPreconditionFailed) {
			continue // changed since the list: no longer what was judged stale
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := p.dp.DeleteHostLink(pt.Interface); err != nil {
			errs = append(errs, err)
		}
	}
	if conf.IPAM.Type != "" {
		if err := p.ipam.GC(ctx, conf.IPAM.Type, args.StdinData); err != nil {
			errs = append(errs, fmt.Errorf("ipam %s: %w", conf.IPAM.Type, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("brtun-cni: GC: %w", err)
	}
	return nil
}

// etagOf is the ETag of a port as listed: its revision number.
func etagOf(pt port) string { return fmt.Sprintf("%q", fmt.Sprint(pt.RevisionNumber)) }
