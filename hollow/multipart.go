package hollow

import (
	"encoding/binary"
	"sort"
	"time"

	"github.com/brtun/brtun/ofswitch"
)

// meter is one installed meter.
type meter struct {
	flags   uint16
	bands   []byte // ofp_meter_band_* entries as sent
	created time.Time
}

// OpenFlow 1.3 meter constants.
const (
	meterAdd    uint16 = 0
	meterModify uint16 = 1
	meterDelete uint16 = 2
	meterAll    uint32 = 0xffffffff
	meterMax    uint32 = 0xffff0000
	meterBandSz        = 16
)

// handleMeterMod implements OFPT_METER_MOD: add refuses an existing or
// invalid id, modify an unknown one; delete of an unknown id is no error.
func (c *ctrlConn) handleMeterMod(m ofswitch.Message) ofswitch.Message {
	if c.secondary() {
		return ofswitch.ErrorReply(m, errBadRequest, codeIsSlave)
	}
	body := m.Body()
	if len(body) < 8 || (len(body)-8)%meterBandSz != 0 {
		return ofswitch.ErrorReply(m, errBadRequest, codeBadLen)
	}
	cmd := binary.BigEndian.Uint16(body[0:2])
	flags := binary.BigEndian.Uint16(body[2:4])
	id := binary.BigEndian.Uint32(body[4:8])
	bands := append([]byte(nil), body[8:]...)
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	switch cmd {
	case meterAdd:
		if id == 0 || id > meterMax {
			return ofswitch.ErrorReply(m, errMeterModFailed, codeMeterInvalid)
		}
		if b.meters[id] != nil {
			return ofswitch.ErrorReply(m, errMeterModFailed, codeMeterExists)
		}
		b.meters[id] = &meter{flags: flags, bands: bands, created: time.Now()}
	case meterModify:
		old := b.meters[id]
		if old == nil {
			return ofswitch.ErrorReply(m, errMeterModFailed, codeMeterUnknown)
		}
		b.meters[id] = &meter{flags: flags, bands: bands, created: old.created}
	case meterDelete:
		if id == meterAll {
			b.meters = map[uint32]*meter{}
		} else {
			delete(b.meters, id)
		}
	default:
		return ofswitch.ErrorReply(m, errMeterModFailed, codeMeterCommand)
	}
	return nil
}

// handleMultipart answers the multipart requests a controller of OVS uses:
// desc, flow stats, port desc, meter stats, meter config, meter features,
// and ONF's flow monitor (monitor.go).
func (c *ctrlConn) handleMultipart(m ofswitch.Message) []ofswitch.Message {
	req, err := ofswitch.ParseMultipartRequest(m)
	if err != nil {
		return []ofswitch.Message{ofswitch.ErrorReply(m, errBadRequest, codeBadLen)}
	}
	if req.Type == ofswitch.MultipartExperimenter {
		specs, ok, err := ofswitch.ParseFlowMonitorRequest(req.Body)
		switch {
		case !ok:
			return []ofswitch.Message{ofswitch.ErrorReply(m, errBadRequest, codeBadExperimenter)}
		case err != nil:
			return []ofswitch.Message{ofswitch.ErrorReply(m, errBadRequest, codeBadLen)}
		}
		return []ofswitch.Message{c.handleFlowMonitor(m, specs)}
	}
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	single := func(body []byte) []ofswitch.Message {
		return []ofswitch.Message{ofswitch.MultipartReply(m.Xid(), req.Type, false, body)}
	}
	switch req.Type {
	case ofswitch.MultipartDesc:
		body := make([]byte, 1056)
		copy(body[0:], "Nicira, Inc.")
		copy(body[256:], "Open vSwitch")
		copy(body[512:], "3.1.0 (hollow)")
		copy(body[768:], "None")
		copy(body[800:], "None")
		return single(body)
	case ofswitch.MultipartFlow:
		fr, err := ofswitch.ParseFlowStatsRequest(req.Body)
		if err != nil {
			return []ofswitch.Message{ofswitch.ErrorReply(m, errBadRequest, codeBadLen)}
		}
		parts, err := b.table.flowStatsReply(m.Xid(), fr)
		if err != nil {
			return []ofswitch.Message{ofswitch.ErrorReply(m, errBadRequest, codeBadLen)}
		}
		return parts
	case ofswitch.MultipartPortDesc:
		ports := make([]*port, 0, len(b.ports))
		for _, p := range b.ports {
			ports = append(ports, p)
		}
		sort.Slice(ports, func(i, j int) bool { return ports[i].number() < ports[j].number() })
		var body []byte
		for _, p := range ports {
			body = append(body, encodePort(p)...)
		}
		return single(body)
	case ofswitch.MultipartMeter, ofswitch.MultipartMeterConfig:
		if len(req.Body) < 8 {
			return []ofswitch.Message{ofswitch.ErrorReply(m, errBadRequest, codeBadLen)}
		}
		id := binary.BigEndian.Uint32(req.Body[0:4])
		var body []byte
		for _, mid := range b.meterIDs(id) {
			if req.Type == ofswitch.MultipartMeter {
				body = append(body, meterStats(mid, b.meters[mid])...)
			} else {
				body = append(body, meterConfig(mid, b.meters[mid])...)
			}
		}
		return single(body)
	case ofswitch.MultipartMeterFeatures:
		body := make([]byte, 16)
		binary.BigEndian.PutUint32(body[0:4], meterMax) // max_meter
		binary.BigEndian.PutUint32(body[4:8], 1<<1)     // band types: drop
		binary.BigEndian.PutUint32(body[8:12], 0xf)     // kbps, pktps, burst, stats
		body[12] = 1                                    // max_bands
		return single(body)
	default:
		return []ofswitch.Message{ofswitch.ErrorReply(m, errBadRequest, codeBadMultipart)}
	}
}

// meterIDs lists the meters a request names (one id, or all), sorted.
func (b *Bridge) meterIDs(id uint32) []uint32 {
	var out []uint32
	for mid := range b.meters {
		if id == meterAll || id == mid {
			out = append(out, mid)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// meterStats is an ofp_meter_stats entry: no traffic passes a hollow
// switch, so every counter is zero.
func meterStats(id uint32, mt *meter) []byte {
	nbands := len(mt.bands) / meterBandSz
	b := make([]byte, 40+16*nbands)
	binary.BigEndian.PutUint32(b[0:4], id)
	binary.BigEndian.PutUint16(b[4:6], uint16(len(b)))
	d := time.Since(mt.created)
	binary.BigEndian.PutUint32(b[32:36], uint32(d/time.Second))
	binary.BigEndian.PutUint32(b[36:40], uint32(d%time.Second))
	return b
}

// meterConfig is an ofp_meter_config entry.
func meterConfig(id uint32, mt *meter) []byte {
	b := make([]byte, 8+len(mt.bands))
	binary.BigEndian.PutUint16(b[0:2], uint16(len(b)))
	binary.BigEndian.PutUint16(b[2:4], mt.flags)
	binary.BigEndian.PutUint32(b[4:8], id)
	copy(b[8:], mt.bands)
	return b
}
