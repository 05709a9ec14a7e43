// Package ovsdb manages the Open_vSwitch database of one brtun host. It is the
// only package that imports libovsdb.
//
// A Client (Dial) keeps one session to a host's ovsdb-server (tcp:, unix: or
// ssl: addresses). When the session drops, or stops answering echo probes, it
// reconnects with backoff and rebuilds its cache from a new monitor of the
// Open_vSwitch, Bridge, Port, Interface and Controller tables. On that cache
// it offers:
//
//   - EnsureHost: br-int and br-tun with their internal ports, the patch pair,
//     fail_mode secure, OpenFlow10/13, in-band control off, a deterministic
//     datapath id per bridge (DatapathID) and the controller targets;
//   - EnsureTunnels: exactly one br-tun port per (peer, tunnel type);
//   - BindPort and UnbindPort: VLAN bindings of interfaces on br-int;
//   - Facts and Changes: datapath ids, ofports, bindings and operator-marked
//     interfaces, and a notification when they change. The cache is indexed
//     and the facts derived once per change of the cache, not per call.
//
// Each change is computed against the cache and sends only what differs, in
// one transaction commented "brtun: ..." (visible in ovsdb-tool show-log);
// a call that finds nothing to change sends nothing. Update batches several
// changes (the methods of Txn) into one transaction. Every call returns once
// ovs-vswitchd has applied the database (next_cfg/cur_cfg), so ofports are
// known. Rows brtun creates carry external_ids:brtun-owner=brtun; brtun never
// modifies or deletes ports it does not own, except for the VLAN binding of a
// port it is asked to bind.
package ovsdb
