package main

import (
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/controller"
)

func parseDHCPFlags(t *testing.T, args ...string) (controller.DHCPOptions, error) {
	t.Helper()
	var o dhcpOptions
	f := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	o.addFlags(f)
	require.NoError(t, f.Parse(args))
	return o.check(1500)
}

// Without flags, the DHCP options are the controller's defaults.
func TestDHCPFlagDefaults(t *testing.T) {
	got, err := parseDHCPFlags(t)
	require.NoError(t, err)
	assert.Equal(t, controller.DHCPOptions{LeaseTime: 24 * time.Hour, UnderlayMTU: 1500,
		PortRate: 10, PortBurst: 20, MeterRate: 2000, MeterBurst: 500}, got)
}

func TestDHCPFlagsReachTheOptions(t *testing.T) {
	got, err := parseDHCPFlags(t, "--dhcp-lease-time", "1h", "--dhcp-port-rate", "2.5", "--dhcp-port-burst", "4",
		"--dhcp-meter-rate", "300", "--dhcp-meter-burst", "50")
	require.NoError(t, err)
	assert.Equal(t, controller.DHCPOptions{LeaseTime: time.Hour, UnderlayMTU: 1500,
		PortRate: 2.5, PortBurst: 4, MeterRate: 300, MeterBurst: 50}, got)
}

func TestDHCPFlagsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--dhcp-lease-time", "9s"}, "--dhcp-lease-time must be at least 10s, got 9s"},
		{[]string{"--dhcp-port-rate", "0"}, "--dhcp-port-rate must be a positive number of packets per second, got 0"},
		{[]string{"--dhcp-port-rate", "-1"}, "--dhcp-port-rate must be a positive number"},
		{[]string{"--dhcp-port-rate", "NaN"}, "--dhcp-port-rate must be a positive number"},
		{[]string{"--dhcp-port-rate", "+Inf"}, "--dhcp-port-rate must be a positive number"},
		{[]string{"--dhcp-port-burst", "0"}, "--dhcp-port-burst must be at least 1 packet, got 0"},
		{[]string{"--dhcp-meter-rate", "0"}, "--dhcp-meter-rate must be 1 to 4294967295 packets per second, got 0"},
		{[]string{"--dhcp-meter-rate", "4294967296"}, "--dhcp-meter-rate must be 1 to 4294967295"},
		{[]string{"--dhcp-meter-burst", "-5"}, "--dhcp-meter-burst must be 1 to 4294967295 packets, got -5"},
	} {
		t.Run(tc.args[0]+"="+tc.args[1], func(t *testing.T) {
			_, err := parseDHCPFlags(t, tc.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
