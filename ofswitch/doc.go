// Package ofswitch speaks OpenFlow 1.3 to Open vSwitch bridges for brtun.
//
// It is the only package that imports libOpenflow, and it uses that library for
// encoding only. Everything read from a switch goes through this package's own
// framing (8-byte header, length) on one reader goroutine per connection and its
// own parsers, run under recover(): a malformed, truncated or undecodable message
// closes that one connection with a log line and never crashes the process.
//
// A connection comes from a Listener (the switch connects to brtun, as after
// `ovs-vsctl set-controller br-tun tcp:IP:PORT`) or from Dial (brtun connects to
// a bridge's passive endpoint such as unix:/var/run/openvswitch/br-tun.mgmt).
// Either way the handshake (HELLO version negotiation to 1.3, FEATURES_REQUEST ->
// datapath id) is done before the Conn is handed out. Echo keepalives run in
// both directions, each side probing after a silence (brtun's EchoInterval
// a little longer than OVS's inactivity probe, so that OVS's echoes keep an
// idle connection alive), with a dead-peer timeout.
//
// A Conn is safe for concurrent use. Requests carry their own xids and replies,
// including OFPT_ERROR messages, are attributed to the request that caused them.
// Because the reader is ordered, a barrier reply proves that every error for the
// messages sent before it has been seen; SendBatch and Bundle rely on that.
//
// agent.go is the switch side of the same protocol (reading a controller's
// requests, building a switch's answers) for the hollow hosts of package
// hollow, so that they too go through this package's framing and parsers.
//
// The package holds no policy: it does not decide which flows a bridge should
// have, it only encodes, sends, dumps and decodes them.
package ofswitch
