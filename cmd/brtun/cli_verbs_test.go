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
