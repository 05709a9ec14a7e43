//go:build bench

package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/brtun/brtun/flows"
	"github.com/brtun/brtun/flows/flowtest"
)

// TestPortSecurityCost times, on a private OVS (dummy datapath), what
// installing br-int's flows costs with port security on and off, in the
// same run, alternating: the bulk install of a 500-port host (ovs-ofctl
// --bundle add-flows of every br-int flow, into an empty br-int) and the
// install of one port's flows into a br-int holding all the others (median
// of 9 ports). It logs the medians and the ratios docs/benchmarks.md
// quotes. The machine is shared: the flow counts are exact, the times are
// not.
func TestPortSecurityCost(t *testing.T) {
	const ports, reps, singles = 500, 3, 9
	o := startOVS(t, t.TempDir(), "h1")
	_, err := o.Vsctl("add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=dummy", "protocols=OpenFlow13", "fail_mode=secure")
	must(t, err)
	dir := t.TempDir()
	write := func(name string, fs []flows.Flow) string {
		lines := make([]string, len(fs))
		for i, f := range fs {
			lines[i] = f.String()
		}
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
		return p
	}
	type result struct {
		flows        int
		bulk, single []time.Duration
	}
	res := map[bool]*result{false: {}, true: {}}
	for r := range reps {
		for _, security := range []bool{r%2 == 1, r%2 == 0} { // alternate which goes first
			set := flows.Compile(flowtest.PortSecurityView(ports, security))
			must(t, flows.Validate(set))
			res[security].flows = len(set.BrInt)
			all := write(fmt.Sprintf("all-%t.flows", security), set.BrInt)
			_, err := o.Ofctl("del-flows", "br-int")
			must(t, err)
			start := time.Now()
			_, err = o.Ofctl("add-flows", "br-int", all, "--bundle")
			res[security].bulk = append(res[security].bulk, time.Since(start))
			must(t, err)
			if got := o.FlowCount("br-int"); got != len(set.BrInt) {
				t.Fatalf("security %t: br-int holds %d flows, want %d", security, got, len(set.BrInt))
			}
			for i := range singles {
				p := set.BrInt[0:0]
				var rest []flows.Flow
				cookie := flows.PortCookie(fmt.Sprintf("net%02d", (i*53)%10), fmt.Sprintf("p%04d", i*53))
				for _, f := range set.BrInt {
					if f.Cookie == cookie {
						p = append(p, f)
					} else {
						rest = append(rest, f)
					}
				}
				if len(p) == 0 {
					t.Fatalf("no flows under port p%04d's cookie", i*53)
				}
				_, err := o.Ofctl("del-flows", "br-int")
				must(t, err)
				_, err = o.Ofctl("add-flows", "br-int", write("rest.flows", rest), "--bundle")
				must(t, err)
				one := write("one.flows", p)
				start := time.Now()
				_, err = o.Ofctl("add-flows", "br-int", one, "--bundle")
				res[security].single = append(res[security].single, time.Since(start))
				must(t, err)
			}
		}
	}
	med := func(ds []time.Duration) time.Duration {
		s := append([]time.Duration(nil), ds...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)/2]
	}
	off, on := res[false], res[true]
	t.Logf("br-int flows, %d dual-stack ports: %d with port security, %d without (%.2fx)", ports, on.flows, off.flows, float64(on.flows)/float64(off.flows))
	t.Logf("bulk install (median of %d): %s with, %s without (%.2fx)", reps, med(on.bulk), med(off.bulk), med(on.bulk).Seconds()/med(off.bulk).Seconds())
	t.Logf("one port's flows into a full br-int (median of %d): %s with, %s without (%.2fx)",
		len(on.single), med(on.single), med(off.single), med(on.single).Seconds()/med(off.single).Seconds())
}
