// Package vswitchd holds libovsdb models generated from the Open_vSwitch
// database schema shipped with Open vSwitch (vswitch.ovsschema). Do not edit
// the generated files by hand; run `go generate ./ovsdb/vswitchd` (or
// `make generate`) to regenerate them. The schema is copied into this
// directory so regeneration does not depend on the installed OVS version.
package vswitchd

//go:generate go tool modelgen -p vswitchd -o . vswitch.ovsschema
