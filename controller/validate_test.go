package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/brtun/brtun/flows"
)

// A compiler that breaks the declared pipeline for h1 only: one of its
// br-tun flows gets a priority its table does not declare. h2's flows are
// compiled as usual.
func compileBrokenForH1(v flows.View) flows.FlowSet {
	set := flows.Compile(v)
	if v.Host == "h1" && len(set.BrTun) > 0 {
		set.BrTun[len(set.BrTun)-1].Priority = 12345
	}
	return set
}

func TestFlowSetThatFailsValidationIsNeverSent(t *testing.T) {
	l := newLab(t, "h1", "h2")
	l.start(Options{compile: compileBrokenForH1})
	sw := l.connectAll()
	l.addPort("h1", "a1", "02:00:00:00:01:01")
	l.addPort("h2", "a2", "02:00:00:00:01:02")
	invalid := func(host string) float64 {
		return l.metric("brtun_controller_invalid_flowsets_total", map[string]string{"host": host})
	}

	h2tun, h2int := sw[bridgeRef{"h2", BrTun}], sw[bridgeRef{"h2", BrInt}]
	require.Eventually(t, func() bool { return h2tun.count("apply") > 0 && h2int.count("apply") > 0 }, 10*time.Second, 10*time.Millisecond,
		"control: h2's valid flows are sent")
	require.NoError(t, flows.ValidateFlows(flows.BrTun, h2tun.flows()))
	require.Eventually(t, func() bool { return invalid("h1") >= 1 }, 10*time.Second, 10*time.Millisecond,
		"h1's invalid set is counted")
	l.write("blue", "h1", "a3") // and again on the next reconcile
	require.Eventually(t, func() bool { return invalid("h1") >= 2 }, 10*time.Second, 10*time.Millisecond)

	for _, b := range bridgeNames {
		s := sw[bridgeRef{"h1", b}]
		assert.Zero(t, s.count("apply"), "h1/%s is sent nothing, not even its valid flows", b)
		assert.Empty(t, s.flows())
	}
	assert.Zero(t, invalid("h2"), "control: h2's sets are valid")
	logged := l.logs.FilterMessageSnippet("compiled flows break the declared pipeline").FilterField(zap.String("host", "h1")).All()
	require.NotEmpty(t, logged)
	errText, _ := logged[0].ContextMap()["error"].(string)
	assert.Contains(t, errText, "priority=12345", "the log names the offending flow")
	assert.Eventually(t, func() bool {
		return strings.Contains(l.ctrl.HostStatus("h1").LastError, "flows: ") && l.ctrl.HostStatus("h1").OVSDBConnected
	}, 10*time.Second, 10*time.Millisecond, "the host's status says why")
	assert.Empty(t, l.ctrl.HostStatus("h2").LastError)
}
