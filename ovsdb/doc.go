// Package ovsdb manages the Open_vSwitch database of one brtun host. It is the
// only package that imports libovsdb.
//
// A Client keeps one connection to a host's ovsdb-server (tcp:, unix: or ssl:
// addresses), reconnects when the connection drops and rebuilds its cache from
// a fresh monitor of the Open_vSwitch, Bridge, Port, Interface and Controller
// tables. On that cache it offers:
//
//   - EnsureHost: br-int and br-tun with their internal ports, the patch pair,
//     fail_mode secure, OpenFlow10/13, in-band control off, a deterministic
//     datapath id per bridge and the controller targets;
//   - EnsureTunnels: exactly one br-tun port per (peer, tunnel type);
//   - BindPort and UnbindPort: VLAN bindings of interfaces on br-int;
//   - Facts and Changes: datapath ids, ofports, bindings and operator-marked
//     interfaces, with a notification when they change.
//
// Every change runs in one transaction per call (Update batches several
// changes into one), carries a comment naming brtun, and returns once
// ovs-vswitchd has applied it, so ofports are known. Rows brtun creates carry
// external_ids:brtun-owner=brtun; brtun never modifies or deletes ports it does
// not own, except for the VLAN binding of a port an operator asked it to bind.
package ovsdb
