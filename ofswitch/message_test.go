package ofswitch

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"hash/maphash"
	"io"
	"testing"
	"time"

	of13 "github.com/contiv/libOpenflow/openflow13"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadMessageFraming(t *testing.T) {
	echo := withXid(newMessage(typeEchoRequest, []byte("abc")), 9)
	barrier := withXid(newMessage(typeBarrierRequest, nil), 10)

	t.Run("consecutive messages split by length", func(t *testing.T) {
		r := bytes.NewReader(append(append([]byte{}, echo...), barrier...))
		m, err := readMessage(r, 0)
		require.NoError(t, err)
		assert.Equal(t, echo, m)
		assert.Equal(t, []byte("abc"), m.Body())
		m, err = readMessage(r, 0)
		require.NoError(t, err)
		assert.Equal(t, barrier, m)
		_, err = readMessage(r, 0)
		assert.ErrorIs(t, err, io.EOF)
	})
	t.Run("length below header size", func(t *testing.T) {
		bad := []byte{4, 2, 0, 7, 0, 0, 0, 1}
		_, err := readMessage(bytes.NewReader(bad), 0)
		assert.ErrorIs(t, err, ErrMalformed)
	})
	t.Run("wrong version refused before the body", func(t *testing.T) {
		hdr := []byte{'G', 'E', 'T', ' ', '/', ' ', 'H', 'T'} // claims 21536 bytes
		_, err := readMessage(bytes.NewReader(hdr), Version13)
		assert.ErrorIs(t, err, ErrMalformed)
	})
	t.Run("truncated header", func(t *testing.T) {
		_, err := readMessage(bytes.NewReader(echo[:5]), 0)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	})
	t.Run("truncated body", func(t *testing.T) {
		_, err := readMessage(bytes.NewReader(echo[:len(echo)-1]), 0)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	})
}

func TestWithXidCopiesAndStampsBundleInner(t *testing.T) {
	inner := newMessage(typeFlowMod, make([]byte, 48))
	add, err := buildBundleAdd(3, inner)
	require.NoError(t, err)
	stamped := withXid(add, 0xabcdef01)

	assert.Equal(t, uint32(0), add.Xid(), "caller's message untouched")
	assert.Equal(t, uint32(0xabcdef01), stamped.Xid())
	innerXid := binary.BigEndian.Uint32(stamped[bundleAddInnerOffset+4 : bundleAddInnerOffset+8])
	assert.Equal(t, uint32(0xabcdef01), innerXid, "inner xid must equal the bundle add's xid")
	assert.Equal(t, []byte(inner[headerLen:]), []byte(stamped[bundleAddInnerOffset+headerLen:]))
	assert.Equal(t, typeFlowMod, stamped[bundleAddInnerOffset+1])
}

func TestNegotiateVersion(t *testing.T) {
	malformed := testHello(Version13, true)
	binary.BigEndian.PutUint16(malformed[headerLen+2:], 200) // element longer than the message

	for _, tc := range []struct {
		name    string
		hello   Message
		wantErr bool
	}{
		{"1.3 with bitmap", testHello(4, true), false},
		{"1.3 without bitmap", testHello(4, false), false},
		{"1.5 without bitmap negotiates down", testHello(6, false), false},
		{"1.0 without bitmap", testHello(1, false), true},
		{"bitmap without 1.3", testHello(1, true), true},
		{"malformed element", malformed, true},
		{"not a hello", newMessage(typeEchoRequest, nil), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := negotiateVersion(tc.hello)
			if tc.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, Version13, v)
		})
	}
}

func TestBuildHelloAnnouncesOnly13(t *testing.T) {
	h, err := buildHello()
	require.NoError(t, err)
	assert.Equal(t, Version13, h.Version())
	assert.Equal(t, typeHello, h.Type())
	assert.Equal(t, []byte{0, 1, 0, 8, 0, 0, 0, 0x10}, h.Body())
	v, err := negotiateVersion(h)
	require.NoError(t, err)
	assert.Equal(t, Version13, v)
}

// A flow's Key is what the flow is: its counters and age leave it alone,
// every other field changes it, and so does a byte moved from the match to
// the instructions.
func TestFlowStatsKeyIgnoresOnlyCountersAndAge(t *testing.T) {
	seed := maphash.MakeSeed()
	base := FlowStats{Table: 20, Priority: 5, Cookie: 0xc1, IdleTimeout: 300, HardTimeout: 0, Flags: 1,
		Match: []byte{0x80, 0, 0x06, 6, 2, 0, 0, 0, 1, 1}, Instructions: []byte{0, 1, 0, 8, 21, 0, 0, 0},
		Duration: time.Second, Packets: 3, Bytes: 180}
	key := base.Key(seed)

	same := base
	same.Duration, same.Packets, same.Bytes = time.Hour, 99, 9999
	same.Match = append([]byte{}, base.Match...) // other memory, same bytes
	assert.Equal(t, key, same.Key(seed), "counters and age")

	for name, change := range map[string]func(*FlowStats){
		"table":        func(s *FlowStats) { s.Table++ },
		"priority":     func(s *FlowStats) { s.Priority++ },
		"cookie":       func(s *FlowStats) { s.Cookie++ },
		"idle timeout": func(s *FlowStats) { s.IdleTimeout++ },
		"hard timeout": func(s *FlowStats) { s.HardTimeout++ },
		"flags":        func(s *FlowStats) { s.Flags++ },
		"match":        func(s *FlowStats) { s.Match = append(append([]byte{}, s.Match[:9]...), 2) },
		"instructions": func(s *FlowStats) { s.Instructions = append(append([]byte{}, s.Instructions[:4]...), 3, 0, 0, 0) },
		"boundary": func(s *FlowStats) {
			s.Match, s.Instructions = s.Match[:9], append([]byte{s.Match[9]}, s.Instructions...)
		},
	} {
		changed := base
		change(&changed)
		assert.NotEqual(t, key, changed.Key(seed), name)
	}
}

func TestParseFlowStatsWalksEntries(t *testing.T) {
	e1 := testFlowStatsEntry(3, 10, 0xc1, []byte{0, 1, 0, 8, 20, 0, 0, 0}) // goto_table:20
	e2 := testFlowStatsEntry(21, 0, 0xc2, nil)
	got, err := parseFlowStats(append(append([]byte{}, e1...), e2...))
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, uint8(3), got[0].Table)
	assert.Equal(t, uint16(10), got[0].Priority)
	assert.Equal(t, uint64(0xc1), got[0].Cookie)
	assert.Equal(t, uint64(3), got[0].Packets)
	assert.Equal(t, []byte{0, 1, 0, 8, 20, 0, 0, 0}, got[0].Instructions)
	assert.Empty(t, got[0].Match)
	assert.Equal(t, uint8(21), got[1].Table)
	assert.Empty(t, got[1].Instructions)

	for name, body := range map[string][]byte{
		"entry longer than body": e1[:len(e1)-1],
		"entry length too small": func() []byte {
			b := append([]byte{}, e1...)
			binary.BigEndian.PutUint16(b[0:2], 20)
			return b
		}(),
		"match longer than entry": func() []byte {
			b := append([]byte{}, e2...)
			binary.BigEndian.PutUint16(b[50:52], 200)
			return b
		}(),
		"standard match type": func() []byte {
			b := append([]byte{}, e2...)
			binary.BigEndian.PutUint16(b[48:50], 0)
			return b
		}(),
		"trailing bytes": append(append([]byte{}, e2...), 1, 2, 3),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseFlowStats(body)
			assert.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func TestCheckInbound(t *testing.T) {
	wrongVersion := newMessage(typeBarrierReply, nil)
	wrongVersion[0] = 1
	lengthMismatch := append(newMessage(typeBarrierReply, nil), 0)

	for name, m := range map[string]Message{
		"wrong version":      wrongVersion,
		"length mismatch":    lengthMismatch,
		"short error":        newMessage(typeError, []byte{0, 1}),
		"short features":     newMessage(typeFeaturesReply, make([]byte, 10)),
		"short role reply":   newMessage(typeRoleReply, make([]byte, 8)),
		"short multipart":    newMessage(typeMultipartReply, make([]byte, 4)),
		"short experimenter": newMessage(typeExperimenter, make([]byte, 4)),
		"short bundle reply": testBundleReply(1, 1, bundleOpenReply)[:20],
	} {
		t.Run(name, func(t *testing.T) {
			if name == "short bundle reply" {
				binary.BigEndian.PutUint16(m[2:4], uint16(len(m)))
			}
			assert.ErrorIs(t, checkInbound(m), ErrMalformed)
		})
	}
	assert.NoError(t, checkInbound(testBundleReply(1, 1, bundleOpenReply)))
	assert.NoError(t, checkInbound(testFeaturesReply(1, 42)))
	assert.NoError(t, checkInbound(testError(1, 5, 0)))
}

func TestParseErrorExperimenter(t *testing.T) {
	body := []byte{0xff, 0xff, 0x08, 0xfd, 0x4f, 0x4e, 0x46, 0x00, 1, 2}
	e, err := parseError(withXid(newMessage(typeError, body), 5))
	require.NoError(t, err)
	assert.Equal(t, uint16(0xffff), e.Type)
	assert.Equal(t, uint16(2301), e.Code)
	assert.Equal(t, onfExperimenterID, e.Experimenter)
	assert.Equal(t, []byte{1, 2}, e.Data)
	assert.Contains(t, e.Error(), "EXPERIMENTER code 2301")
}

// TestBundleAddMatchesLibOpenflow: the bundle add brtun writes by hand is the
// one libOpenflow encodes (ONF extension 230, bundle id, flags, inner message).
func TestBundleAddMatchesLibOpenflow(t *testing.T) {
	inner := newMessage(typeFlowMod, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	got, err := buildBundleAdd(0x01020304, inner)
	require.NoError(t, err)
	want, err := marshal(of13.NewBundleAdd(&of13.BundleAdd{BundleID: 0x01020304, Flags: bundleFlags, Message: rawMessage(inner)}))
	require.NoError(t, err)
	assert.Equal(t, hex.EncodeToString(want), hex.EncodeToString(got))
	assert.True(t, isBundleAdd(got))
}
