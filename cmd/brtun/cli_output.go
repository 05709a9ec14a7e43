package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/brtun/brtun/northbound"
	"github.com/brtun/brtun/topology"
	"sigs.k8s.io/yaml"
)

// show prints an API answer: as JSON, YAML or names with -o json, yaml or
// name (printFormatted), else decoded into T and rendered by table. Every
// command that prints objects goes through here.
func show[T any](o *cliOptions, raw []byte, table func(w io.Writer, v T)) error {
	if o.output != outputTable {
		return printFormatted(o.out, o.output, raw)
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	tw := tabwriter.NewWriter(o.out, 0, 4, 2, ' ', 0)
	table(tw, v)
	return tw.Flush()
}

// printFormatted prints a JSON answer as -o json (indented), yaml or name
// asks.
func printFormatted(w io.Writer, format string, raw []byte) error {
	switch format {
	case outputYAML:
		out, err := yaml.JSONToYAML(raw)
		if err != nil {
			return fmt.Errorf("answer as YAML: %w", err)
		}
		_, err = w.Write(out)
		return err
	case outputName:
		list, err := names(raw)
		if err != nil {
			return err
		}
		for _, n := range list {
			if _, err := fmt.Fprintln(w, n); err != nil {
				return err
			}
		}
		return nil
	}
	return printJSON(w, raw)
}

func printJSON(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		return fmt.Errorf("answer is not JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// names are the names -o name prints of an answer: an object's, or those of
// the objects of a list ({"hosts": [...]}). An object of a network (a port,
// a subnet) is NETWORK/NAME.
func names(raw []byte) ([]string, error) {
	var answer map[string]any
	if err := json.Unmarshal(raw, &answer); err != nil {
		return nil, fmt.Errorf("decode answer: %w", err)
	}
	if name, ok := nameOf(answer); ok {
		return []string{name}, nil
	}
	for _, v := range answer {
		items, ok := v.([]any)
		if !ok {
			continue
		}
		out := []string{}
		for _, item := range items {
			obj, _ := item.(map[string]any)
			name, ok := nameOf(obj)
			if !ok {
				return nil, usageErrorf("-o name: these objects have no names; use -o table, json or yaml")
			}
			out = append(out, name)
		}
		return out, nil
	}
	return nil, usageErrorf("-o name: the answer holds no named objects; use -o table, json or yaml")
}

func nameOf(obj map[string]any) (string, bool) {
	name, ok := obj["name"].(string)
	if !ok {
		return "", false
	}
	if network, ok := obj["network"].(string); ok && network != "" {
		return network + "/" + name, true
	}
	return name, true
}

func bridgeCell(b northbound.BridgeStatus) string {
	return fmt.Sprintf("%s r%d", b.OpenFlow, b.AppliedRevision)
}

func hostTable(w io.Writer, list northbound.HostList) {
	fmt.Fprintln(w, "NAME\tOVSDB\tTUNNEL-IP\tDATAPATH\tOVSDB-STATUS\tBR-INT\tBR-TUN")
	for _, h := range list.Hosts {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, h.OVSDB, h.TunnelIP, h.DatapathType, h.Status.OVSDB,
			bridgeCell(h.Status.Bridges[northbound.BridgeInt]), bridgeCell(h.Status.Bridges[northbound.BridgeTun]))
	}
}

func hostDetail(w io.Writer, h northbound.HostView) {
	fmt.Fprintf(w, "Name:\t%s\n", h.Name)
	fmt.Fprintf(w, "OVSDB:\t%s (%s)\n", h.OVSDB, h.Status.OVSDB)
	fmt.Fprintf(w, "Tunnel IP:\t%s\n", h.TunnelIP)
	fmt.Fprintf(w, "Datapath type:\t%s\n", h.DatapathType)
	metaDetail(w, h.Meta)
	names := make([]string, 0, len(h.Status.Bridges))
	for name := range h.Status.Bridges {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b := h.Status.Bridges[name]
		dpid := b.DatapathID
		if dpid == "" {
			dpid = "-"
		}
		fmt.Fprintf(w, "Bridge %s:\topenflow %s, datapath id %s, applied revision %d\n", name, b.OpenFlow, dpid, b.AppliedRevision)
	}
}

func networkTable(w io.Writer, list northbound.NetworkList) {
	fmt.Fprintln(w, "NAME\tTYPE\tSEGMENT\tMAC-LEARNING\tMTU")
	for _, n := range list.Networks {
		fmt.Fprintf(w, "%s\t%s\t%d\t%t\t%d\n", n.Name, n.Type, n.SegmentID, n.MACLearning, n.MTU)
	}
}

func networkDetail(w io.Writer, n northbound.NetworkView) {
	fmt.Fprintf(w, "Name:\t%s\n", n.Name)
	fmt.Fprintf(w, "Type:\t%s\n", n.Type)
	fmt.Fprintf(w, "Segment:\t%d\n", n.SegmentID)
	fmt.Fprintf(w, "MAC learning:\t%t\n", n.MACLearning)
	if n.EVPN {
		fmt.Fprintf(w, "EVPN:\ttrue (route target %s)\n", orDash(n.RouteTarget))
	}
	fmt.Fprintf(w, "MTU:\t%d\n", n.MTU)
	metaDetail(w, n.Meta)
}

// metaDetail prints the fields every object carries.
func metaDetail(w io.Writer, m topology.Meta) {
	fmt.Fprintf(w, "Description:\t%s\n", orDash(m.Description))
	fmt.Fprintf(w, "Tags:\t%s\n", orDash(strings.Join(m.Tags, ", ")))
	fmt.Fprintf(w, "Revision:\t%d\n", m.RevisionNumber)
}

func adminState(p northbound.PortView) string {
	if p.Up() {
		return "up"
	}
	return "down"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func portTable(w io.Writer, list northbound.PortList) {
	fmt.Fprintln(w, "NAME\tHOST\tINTERFACE\tMAC\tIPS\tLOCAL-VLAN\tSTATUS\tADMIN")
	for _, p := range list.Ports {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", p.Name, p.Host, p.Interface, orDash(p.MAC),
			orDash(strings.Join(p.IPs, ",")), p.LocalVLAN, p.Status, adminState(p))
	}
}

// portTableWithNetwork lists ports of several networks.
func portTableWithNetwork(w io.Writer, list northbound.PortList) {
	fmt.Fprintln(w, "NETWORK\tNAME\tHOST\tINTERFACE\tMAC\tIPS\tLOCAL-VLAN\tSTATUS\tADMIN")
	for _, p := range list.Ports {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", p.Network, p.Name, p.Host, p.Interface, orDash(p.MAC),
			orDash(strings.Join(p.IPs, ",")), p.LocalVLAN, p.Status, adminState(p))
	}
}

func portDetail(w io.Writer, p northbound.PortView) {
	fmt.Fprintf(w, "Network:\t%s\n", p.Network)
	fmt.Fprintf(w, "Name:\t%s\n", p.Name)
	fmt.Fprintf(w, "Host:\t%s\n", p.Host)
	fmt.Fprintf(w, "Interface:\t%s\n", p.Interface)
	fmt.Fprintf(w, "MAC:\t%s\n", orDash(p.MAC))
	fmt.Fprintf(w, "IPs:\t%s\n", orDash(strings.Join(p.IPs, ", ")))
	if p.DeviceID != "" {
		fmt.Fprintf(w, "Device ID:\t%s\n", p.DeviceID)
	}
	fmt.Fprintf(w, "Security:\t%t\n", p.PortSecurityEnabled)
	pairs := make([]string, 0, len(p.AllowedAddressPairs))
	for _, ap := range p.AllowedAddressPairs {
		pairs = append(pairs, strings.TrimSuffix(ap.IPAddress+","+ap.MACAddress, ","))
	}
	fmt.Fprintf(w, "Pairs:\t%s\n", orDash(strings.Join(pairs, " ")))
	fmt.Fprintf(w, "Local VLAN:\t%d\n", p.LocalVLAN)
	fmt.Fprintf(w, "Status:\t%s\n", p.Status)
	fmt.Fprintf(w, "Admin state:\t%s\n", adminState(p))
	metaDetail(w, p.Meta)
}

func flowTable(w io.Writer, list northbound.FlowList) {
	fmt.Fprintln(w, "TABLE\tPRIORITY\tCOOKIE\tOWNER\tPACKETS\tBYTES\tAGE\tMATCH\tACTIONS")
	for _, f := range list.Flows {
		fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%d\t%d\t%ss\t%s\t%s\n", f.Table, f.Priority, f.Cookie, orDash(f.Owner),
			f.NPackets, f.NBytes, strconv.FormatFloat(f.DurationS, 'f', 1, 64), orDash(f.Match), f.Actions)
	}
}
