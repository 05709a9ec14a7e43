package hollow

import (
	"testing"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/ofswitch"
)

// FuzzHandle feeds arbitrary messages to a hollow switch: whatever a
// controller sends, handling it must not panic.
func FuzzHandle(f *testing.F) {
	for _, fl := range []flows.Flow{
		{Priority: 1, Actions: []flows.Action{flows.Normal{}}},
		{Table: 1, Priority: 2, Match: flows.Match{VLANTCI: &flows.MaskedU16{Value: 0x1001, Mask: 0x1fff}}, Actions: []flows.Action{flows.PopVLAN{}, flows.GotoTable{Table: 2}}},
	} {
		for _, cmd := range []ofswitch.Command{ofswitch.Add, ofswitch.ModifyStrict, ofswitch.DeleteStrict} {
			m, err := ofswitch.Encode(fl, cmd)
			if err != nil {
				f.Fatal(err)
			}
			f.Add([]byte(m))
			f.Add([]byte(bundleAdd(1, 3, m, 0)))
		}
	}
	f.Add([]byte(bundleCtrl(1, ofswitch.BundleCommitRequest, 3, 0)))
	f.Add([]byte(ofswitch.Reply(ofswitch.TypeMultipartRequest, 0, make([]byte, 48))))
	f.Add([]byte(ofswitch.Reply(ofswitch.TypeMeterMod, 0, make([]byte, 24))))
	f.Add([]byte(ofswitch.Reply(ofswitch.TypeRoleRequest, 0, make([]byte, 16))))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 8 {
			return
		}
		_, r := newRawConn(t)
		r.send(ofswitch.Message(b))
	})
}
