package hollow

import (
	"github.com/brtun/brtun/flows"
)

// This file holds the checks ovs-vswitchd makes before it accepts a flow
// (ofpacts_check and match prerequisites in OVS), for the fields and actions
// brtun uses: a flow OVS would refuse is refused here with the same error.

// More OpenFlow 1.3 error types and codes.
const (
	errBadAction uint16 = 2
	errBadMatch  uint16 = 4

	codeMatchInconsistent uint16 = 10 // OFPBAC_MATCH_INCONSISTENT
	codeBadPrereq         uint16 = 9  // OFPBMC_BAD_PREREQ
)

// Ether types and protocols of the prerequisites.
const (
	ethTypeARP  uint16 = 0x0806
	ethTypeIPv4 uint16 = 0x0800
	ethTypeIPv6 uint16 = 0x86dd
	protoICMPv6 uint8  = 58
	vlanCFI     uint16 = 0x1000
)

// checkFlow returns the error OVS answers a flow with, or nil.
func checkFlow(f flows.Flow) *ofError {
	m := f.Match
	if !matchPrereqsOK(m) {
		return &ofError{errBadMatch, codeBadPrereq}
	}
	vlan := m.VLANTCI != nil && m.VLANTCI.Mask&vlanCFI != 0 && m.VLANTCI.Value&vlanCFI != 0
	for _, a := range f.Actions {
		ok := true
		switch a := a.(type) {
		case flows.PushVLAN:
			vlan = true
		case flows.PopVLAN:
			ok, vlan = vlan, false
		case flows.SetField:
			ok = fieldPrereqsOK(a.Field, m) && (a.Field != flows.FieldVLANVID || vlan)
		case flows.Load:
			ok = fieldPrereqsOK(a.Dst.Field, m)
		case flows.Move:
			ok = fieldPrereqsOK(a.Src.Field, m) && fieldPrereqsOK(a.Dst.Field, m)
		}
		if !ok {
			return &ofError{errBadAction, codeMatchInconsistent}
		}
	}
	return nil
}

// matchPrereqsOK checks that every matched field has its prerequisites in
// the match (arp_* needs arp, nw_proto needs ip or ipv6, ...).
func matchPrereqsOK(m flows.Match) bool {
	is := func(t uint16) bool { return m.EthType != nil && *m.EthType == t }
	switch {
	case (m.ARPOp != nil || m.ARPSPA != nil || m.ARPTPA != nil) && !is(ethTypeARP):
		return false
	case m.IPProto != nil && !is(ethTypeIPv4) && !is(ethTypeIPv6):
		return false
	case m.ICMPv6Type != nil && !(is(ethTypeIPv6) && m.IPProto != nil && *m.IPProto == protoICMPv6):
		return false
	case m.NDTarget != nil && !(m.ICMPv6Type != nil && (*m.ICMPv6Type == 135 || *m.ICMPv6Type == 136)):
		return false
	}
	return true
}

// fieldPrereqsOK checks what an action's field needs of the flow's match.
func fieldPrereqsOK(f flows.Field, m flows.Match) bool {
	is := func(t uint16) bool { return m.EthType != nil && *m.EthType == t }
	icmp6 := is(ethTypeIPv6) && m.IPProto != nil && *m.IPProto == protoICMPv6
	nd := func(types ...uint8) bool {
		if !icmp6 || m.ICMPv6Type == nil {
			return false
		}
		for _, t := range types {
			if *m.ICMPv6Type == t {
				return true
			}
		}
		return false
	}
	switch f {
	case flows.FieldARPOp, flows.FieldARPSPA, flows.FieldARPTPA, flows.FieldARPSHA, flows.FieldARPTHA:
		return is(ethTypeARP)
	case flows.FieldIPv6Src, flows.FieldIPv6Dst:
		return is(ethTypeIPv6)
	case flows.FieldICMPv6Type:
		return icmp6
	case flows.FieldNDTarget, flows.FieldNDReserved, flows.FieldNDOptionsType:
		return nd(135, 136)
	case flows.FieldNDSLL:
		return nd(135)
	case flows.FieldNDTLL:
		return nd(136)
	}
	return true
}
