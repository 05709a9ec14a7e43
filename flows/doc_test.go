package flows_test

import (
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/brtun/brtun/flows"
)

// TestPipelineDocMatchesDeclaredTables keeps docs/pipeline.md honest: it has
// one "## BRIDGE table N: NAME" section per declared table, in table order,
// with the declared names, and no section for a table that does not exist.
func TestPipelineDocMatchesDeclaredTables(t *testing.T) {
	doc, err := os.ReadFile("../docs/pipeline.md")
	require.NoError(t, err)
	var documented []string
	for _, m := range regexp.MustCompile(`(?m)^## (br-tun|br-int) table (\d+): (\S+)$`).FindAllStringSubmatch(string(doc), -1) {
		documented = append(documented, m[1]+" "+m[2]+" "+m[3])
	}
	var declared []string
	p := flows.Declared()
	for _, b := range []flows.Bridge{flows.BrTun, flows.BrInt} {
		for _, tab := range p.Tables(b) {
			declared = append(declared, string(b)+" "+strconv.Itoa(int(tab.ID))+" "+tab.Name)
		}
	}
	assert.Equal(t, declared, documented)
}
