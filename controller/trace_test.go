package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/trace"
)

// hopPath lists a walk's hops as "host/bridge:tables".
func hopPath(res trace.Result) []string {
	var out []string
	for _, h := range res.Hops {
		var tables []string
		for _, l := range h.Lookups {
			tables = append(tables, fmt.Sprint(l.Table))
		}
		out = append(out, h.Host+"/"+h.Bridge+":"+strings.Join(tables, ","))
	}
	return out
}

// Trace reads the flows the switches hold and the ports OVSDB shows, host
// after host, so a flow deleted behind brtun's back changes the path.
func TestTraceReadsWhatTheSwitchesHold(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, "h1", "h2")
	l.start(Options{})
	sw := l.connectAll()
	l.addPort("h1", "a1", "02:00:00:00:01:01")
	l.waitApplied(l.addPort("h2", "a2", "02:00:00:00:01:02"))
	require.Eventually(t, func() bool { return l.ctrl.PortBound("h1", "tap-a1") && l.ctrl.PortBound("h2", "tap-a2") },
		10*time.Second, 10*time.Millisecond)
	l.settle()

	unicast := trace.Request{Kind: trace.Unicast, DstMAC: "02:00:00:00:01:02"}
	res, err := l.ctrl.Trace(ctx, "blue", "a1", unicast)
	require.NoError(t, err)
	assert.Equal(t, []string{"h1/br-int:0,20,30", "h1/br-tun:0,1,20", "h2/br-tun:0,3,10", "h2/br-int:0,30"}, hopPath(res))
	require.Len(t, res.Reached, 1)
	assert.Equal(t, trace.Endpoint{Host: "h2", Network: "blue", Port: "a2", Interface: "tap-a2"}, res.Reached[0])
	assert.Equal(t, "port:a2", res.Hops[1].Lookups[2].Owner, "owners are named as the flow endpoint names them")
	assert.Equal(t, "tap-a1", res.Hops[0].InPort)

	// Drift: h1's br-tun loses a2's flows; the unicast now floods.
	sw[bridgeRef{"h1", BrTun}].edit(func(held map[flows.Key]flows.Flow) {
		for k, f := range held {
			if f.Cookie == flows.PortCookie("blue", "a2") {
				delete(held, k)
			}
		}
	})
	res, err = l.ctrl.Trace(ctx, "blue", "a1", unicast)
	require.NoError(t, err)
	assert.Equal(t, []string{"h1/br-int:0,20,30", "h1/br-tun:0,1,20,21", "h2/br-tun:0,3,10", "h2/br-int:0,30"}, hopPath(res))
	assert.Equal(t, "pipeline", res.Hops[1].Lookups[2].Owner)

	// A host whose switch is gone ends its branch with the reason.
	require.NoError(t, sw[bridgeRef{"h2", BrTun}].Close())
	require.Eventually(t, func() bool {
		res, err = l.ctrl.Trace(ctx, "blue", "a1", unicast)
		return err == nil && len(res.Hops) == 3
	}, 5*time.Second, 10*time.Millisecond)
	assert.Contains(t, res.Hops[2].Dropped, "switch not connected")
	assert.Empty(t, res.Reached)

	// Errors.
	_, err = l.ctrl.Trace(ctx, "blue", "a9", unicast)
	assert.ErrorIs(t, err, ErrUnknownPort)
	_, err = l.ctrl.Trace(ctx, "blue", "a1", trace.Request{Kind: trace.ARP})
	var re *trace.RequestError
	assert.True(t, errors.As(err, &re))
}
