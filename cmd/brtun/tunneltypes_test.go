package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/topology"
)

// The documents that name tunnel types must agree with topology's
// tunnel-type table: these tests fail when a type is added to (or changed
// in) the table and one of them is not, or the other way round.

func tableNames() []string {
	var names []string
	for _, tt := range topology.TunnelTypes() {
		names = append(names, string(tt.Name))
	}
	return names
}

func TestOpenAPIAgreesWithTunnelTypes(t *testing.T) {
	raw, err := os.ReadFile("../../northbound/openapi.json")
	require.NoError(t, err)
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Enum       []string `json:"enum"`
				Properties map[string]struct {
					Maximum     *uint64 `json:"maximum"`
					Description string  `json:"description"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	schemas := doc.Components.Schemas

	assert.Equal(t, tableNames(), schemas["NetworkType"].Enum, "NetworkType enum")

	seg := schemas["NetworkRequest"].Properties["segment_id"]
	require.NotNil(t, seg.Maximum)
	assert.Equal(t, uint64(topology.MaxSegmentOfAnyType()), *seg.Maximum, "segment_id maximum")
	assert.Contains(t, seg.Description, "("+topology.SegmentRanges()+")", "segment_id description lists every range")

	mtu := schemas["Network"].Properties["mtu"].Description
	var overheads []string
	for _, tt := range topology.TunnelTypes() {
		overheads = append(overheads, fmt.Sprintf("%s: underlay - %d", tt.Name, tt.Overhead))
	}
	assert.Contains(t, mtu, "("+strings.Join(overheads, ", ")+")", "mtu description lists every overhead")
}

func TestCLIHelpAgreesWithTunnelTypes(t *testing.T) {
	var stdout, stderr bytes.Buffer
	root := newRootCommand(&stdout, &stderr)
	root.SetArgs([]string{"net", "create", "--help"})
	require.NoError(t, root.Execute())
	help := stdout.String()

	use := regexp.MustCompile(`net create NAME --type (\S+)`).FindStringSubmatch(help)
	require.NotNil(t, use, "usage line in:\n%s", help)
	assert.Equal(t, tableNames(), strings.Split(use[1], "|"), "usage line")

	typeFlag := regexp.MustCompile(`--type string\s+tunnel type: (.*)`).FindStringSubmatch(help)
	require.NotNil(t, typeFlag, "--type in:\n%s", help)
	assert.Equal(t, tableNames(), regexp.MustCompile(`[a-z0-9]+`).FindAllString(strings.ReplaceAll(typeFlag[1], " or ", ", "), -1), "--type help")

	segFlag := regexp.MustCompile(`--segment int\s+(.*)`).FindStringSubmatch(help)
	require.NotNil(t, segFlag, "--segment in:\n%s", help)
	assert.Equal(t, tableRanges(), ranges(segFlag[1]), "--segment help")
}

func TestAPIDocAgreesWithTunnelTypes(t *testing.T) {
	raw, err := os.ReadFile("../../docs/api.md")
	require.NoError(t, err)
	doc := string(raw)
	const header = "| type | segment id | VM MTU | OVS interface type | UDP port |\n|---|---|---|---|---|\n"
	start := strings.Index(doc, header)
	require.GreaterOrEqual(t, start, 0, "docs/api.md has the tunnel types table")
	rows := doc[start+len(header):]
	rows = rows[:strings.Index(rows, "\n\n")+1]

	var want strings.Builder
	for _, tt := range topology.TunnelTypes() {
		port := "none (IP protocol 47)"
		if tt.UDPPort != 0 {
			port = strconv.Itoa(int(tt.UDPPort))
		} else {
			require.Equal(t, topology.GRE, tt.Name, "say how a non-UDP type other than GRE is carried")
		}
		fmt.Fprintf(&want, "| `%s` | %s 1..%d | underlay - %d | `%s` | %s |\n",
			tt.Name, tt.SegmentName, tt.MaxSegment, tt.Overhead, tt.OVSType, port)
	}
	assert.Equal(t, want.String(), rows, "docs/api.md tunnel types table")
}

// tableRanges is "name 1..max" of every type.
func tableRanges() []string {
	var out []string
	for _, tt := range topology.TunnelTypes() {
		out = append(out, fmt.Sprintf("%s 1..%d", tt.Name, tt.MaxSegment))
	}
	return out
}

// ranges finds every "name 1..max" in s.
func ranges(s string) []string {
	return regexp.MustCompile(`[a-z0-9]+ 1\.\.[0-9]+`).FindAllString(s, -1)
}
