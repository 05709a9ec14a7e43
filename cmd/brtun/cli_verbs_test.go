package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestCLIObjectPaths: an object's arguments fill its collection's
// placeholders, then name the object, each escaped.
func TestCLIObjectPaths(t *testing.T) {
	for _, c := range []struct {
		obj  cliObject
		args []string
		want string
	}{
		{hostObject(), nil, "/v1/hosts"},
		{hostObject(), []string{"h1"}, "/v1/hosts/h1"},
		{networkObject(), []string{"blue"}, "/v1/networks/blue"},
		{subnetObject(), []string{"blue"}, "/v1/networks/blue/subnets"},
		{subnetObject(), []string{"blue", "v4"}, "/v1/networks/blue/subnets/v4"},
		{portObject(), []string{"blue"}, "/v1/networks/blue/ports"},
		{portObject(), []string{"blue", "vm1"}, "/v1/networks/blue/ports/vm1"},
		{portObject(), []string{"a/b {c}", "x?y"}, "/v1/networks/a%2Fb%20%7Bc%7D/ports/x%3Fy"},
		{vtepObject(), []string{"k1"}, "/v1/remote-vteps/k1"},
		{bgpPeerObject(), []string{"2001:db8::1"}, "/v1/bgp/peers/2001:db8::1"},
	} {
		assert.Equal(t, c.want, c.obj.path(c.args...), "%s %v", c.obj.kind, c.args)
	}
}

// TestCLIRmSaysWhatItDeleted: rm says "deleted KIND ID"; -o name prints
// the ID alone, also for kinds of two words.
func TestCLIRmSaysWhatItDeleted(t *testing.T) {
	url, _ := newCLIServer(t)
	s := "--server=" + url
	mustRun(t, s, "host", "add", "h1", "--ovsdb", "tcp:198.51.100.1:6640", "--tunnel-ip", "192.0.2.1")
	mustRun(t, s, "net", "create", "blue", "--type", "vxlan")
	for _, name := range []string{"k1", "k2"} {
		mustRun(t, s, "vtep", "add", name, "--tunnel-ip", "192.0.2.1"+name[1:]+"0", "--network", "blue")
	}
	mustRun(t, s, "bgp", "peer", "add", "198.51.100.9", "--asn", "65009")

	assert.Equal(t, "deleted remote VTEP k1\n", mustRun(t, s, "vtep", "rm", "k1"))
	assert.Equal(t, "k2\n", mustRun(t, s, "-o", "name", "vtep", "rm", "k2"))
	assert.Equal(t, "198.51.100.9\n", mustRun(t, s, "-o", "name", "bgp", "peer", "rm", "198.51.100.9"))
	assert.Equal(t, "blue\n", mustRun(t, s, "-o", "name", "net", "rm", "blue"))
	assert.Equal(t, "deleted host h1\n", mustRun(t, s, "host", "rm", "h1"))
	assert.Empty(t, mustRun(t, s, "-o", "name", "vtep", "list"), "both VTEPs are gone")
}
