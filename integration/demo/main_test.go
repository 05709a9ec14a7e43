//go:build integration

package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDemo runs `make demo`'s program non-interactively, so the demo cannot
// rot: every ping check must come out as the demo says, and it must tear
// down after itself (the lab's cleanup runs inside run).
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	err := run(&out, options{})
	t.Log(out.String())
	require.NoError(t, err)
	require.Contains(t, out.String(), "Demo passed")
	require.Contains(t, out.String(), "tun_id=0x1389", "the flow dump of table 3 is shown")
	require.Contains(t, out.String(), "lease of 198.18.0.4 obtained", "a3 leased its address from brtun")
	require.Contains(t, out.String(), "c1: eth0 198.18.0.5/24, gateway 198.18.0.1", "brtun-cni gave the container brtun's address")
}
