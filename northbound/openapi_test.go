package northbound

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/brtun/brtun/topology"
	"github.com/gorilla/mux"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openAPIMethods are the operation keys of an OpenAPI path item.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// routerRoutes returns "METHOD PATH" for every route of the API's router.
func routerRoutes(t *testing.T) []string {
	t.Helper()
	api, err := New(Options{Store: topology.NewMemoryStore()})
	require.NoError(t, err)
	var routes []string
	err = api.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil {
			return fmt.Errorf("route without a path template: %w", err)
		}
		methods, err := route.GetMethods()
		if err != nil {
			return fmt.Errorf("route %s without methods: %w", path, err)
		}
		for _, m := range methods {
			routes = append(routes, m+" "+path)
		}
		return nil
	})
	require.NoError(t, err)
	sort.Strings(routes)
	return routes
}

// loadOpenAPI parses the embedded document.
func loadOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	require.NoError(t, json.Unmarshal(openAPIDocument, &doc), "openapi.json is not valid JSON")
	return doc
}

// obj returns v[key] as a JSON object, failing when it is not one.
func obj(t *testing.T, v map[string]any, key string) map[string]any {
	t.Helper()
	o, ok := v[key].(map[string]any)
	require.True(t, ok, "%q is not a JSON object in %v", key, v)
	return o
}

// resolve follows a local "$ref" (if v has one) and returns the target and its name.
func resolve(t *testing.T, doc, v map[string]any) (map[string]any, string) {
	t.Helper()
	ref, ok := v["$ref"].(string)
	if !ok {
		return v, ""
	}
	parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
	require.True(t, strings.HasPrefix(ref, "#/") && len(parts) > 0, "non-local $ref %q", ref)
	cur := doc
	for _, p := range parts {
		cur = obj(t, cur, p)
	}
	return cur, parts[len(parts)-1]
}

func TestOpenAPIMatchesRouter(t *testing.T) {
	doc := loadOpenAPI(t)
	var documented []string
	for path, item := range obj(t, doc, "paths") {
		for key := range item.(map[string]any) {
			if slices.Contains(openAPIMethods, key) {
				documented = append(documented, strings.ToUpper(key)+" "+path)
			}
		}
	}
	sort.Strings(documented)
	routes := routerRoutes(t)
	require.NotEmpty(t, routes)
	assert.Equal(t, routes, documented, "the OpenAPI document must list exactly the router's routes and methods")
}

func TestOpenAPIServed(t *testing.T) {
	a := newTestAPI(t, nil)
	r := a.must("GET", "/v1/openapi.json", "", http.StatusOK)
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	assert.Equal(t, openAPIDocument, r.body)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(r.body, &doc))
	assert.Equal(t, "3.0.3", doc["openapi"])
	assert.Equal(t, codeMethodNotAllowed, a.must("POST", "/v1/openapi.json", "", http.StatusMethodNotAllowed).errorCode(t))
}

// walkRefs calls fn for every "$ref" value anywhere in v.
func walkRefs(v any, fn func(ref string)) {
	switch v := v.(type) {
	case map[string]any:
		if ref, ok := v["$ref"].(string); ok {
			fn(ref)
		}
		for _, x := range v {
			walkRefs(x, fn)
		}
	case []any:
		for _, x := range v {
			walkRefs(x, fn)
		}
	}
}

var pathVar = regexp.MustCompile(`\{([^}]+)\}`)

func TestOpenAPIDocumentIsConsistent(t *testing.T) {
	doc := loadOpenAPI(t)

	// Every $ref points at something.
	walkRefs(doc, func(ref string) {
		resolve(t, doc, map[string]any{"$ref": ref})
	})

	operationIDs := make(map[string]string)
	for path, rawItem := range obj(t, doc, "paths") {
		item := rawItem.(map[string]any)
		var want []string
		for _, m := range pathVar.FindAllStringSubmatch(path, -1) {
			want = append(want, m[1])
		}
		sort.Strings(want)
		for _, method := range openAPIMethods {
			rawOp, ok := item[method]
			if !ok {
				continue
			}
			op := rawOp.(map[string]any)
			where := strings.ToUpper(method) + " " + path

			id, _ := op["operationId"].(string)
			require.NotEmpty(t, id, "%s has no operationId", where)
			require.NotContains(t, operationIDs, id, "%s reuses operationId %s of %s", where, id, operationIDs[id])
			operationIDs[id] = where

			// Path parameters declared on the path item or the operation
			// are exactly the template's variables.
			var params []any
			if p, ok := item["parameters"].([]any); ok {
				params = append(params, p...)
			}
			if p, ok := op["parameters"].([]any); ok {
				params = append(params, p...)
			}
			var got []string
			for _, rawParam := range params {
				param, _ := resolve(t, doc, rawParam.(map[string]any))
				if param["in"] == "path" {
					assert.Equal(t, true, param["required"], "%s: path parameter %v must be required", where, param["name"])
					got = append(got, param["name"].(string))
				}
			}
			sort.Strings(got)
			assert.Equal(t, want, got, "%s: path parameters", where)

			responses := obj(t, op, "responses")
			success := false
			for code, rawResp := range responses {
				require.Regexp(t, `^[1-5][0-9][0-9]$`, code, "%s: response code", where)
				resp, _ := resolve(t, doc, rawResp.(map[string]any))
				assert.NotEmpty(t, resp["description"], "%s %s: response without description", where, code)
				success = success || code[0] == '2'
			}
			assert.True(t, success, "%s has no 2xx response", where)
		}
	}
}

// jsonField is one field of a Go type as encoding/json sees it.
type jsonField struct {
	typ       reflect.Type
	omitempty bool
}

// jsonFields lists the JSON fields of struct type typ, flattening embedded structs.
func jsonFields(typ reflect.Type) map[string]jsonField {
	fields := make(map[string]jsonField)
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = jsonField{typ: f.Type, omitempty: strings.Contains(opts, "omitempty")}
	}
	return fields
}

// schemaChecker compares OpenAPI schemas with the Go types they describe.
type schemaChecker struct {
	t       *testing.T
	doc     map[string]any
	visited map[string]bool // component schemas reached
}

// check compares schema (or what its $ref names) with typ. With
// checkRequired, a schema's "required" must list exactly the fields
// encoding/json always writes (response types).
func (c *schemaChecker) check(where string, schema map[string]any, typ reflect.Type, checkRequired bool) {
	c.t.Helper()
	schema, name := resolve(c.t, c.doc, schema)
	if name != "" {
		c.visited[name] = true
		where += " (" + name + ")"
	}
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	kindType := map[reflect.Kind]string{
		reflect.String: "string", reflect.Bool: "boolean", reflect.Float64: "number",
		reflect.Int: "integer", reflect.Int64: "integer", reflect.Uint8: "integer", reflect.Uint16: "integer",
		reflect.Uint32: "integer", reflect.Uint64: "integer",
		reflect.Struct: "object", reflect.Map: "object", reflect.Slice: "array",
	}
	if typ.Kind() == reflect.Interface {
		assert.NotContains(c.t, schema, "type", "%s: %s holds any JSON value", where, typ)
		return
	}
	want, ok := kindType[typ.Kind()]
	require.True(c.t, ok, "%s: no JSON type for Go kind %s", where, typ.Kind())
	require.Equal(c.t, want, schema["type"], "%s: type of Go %s", where, typ)

	switch typ.Kind() {
	case reflect.Struct:
		fields := jsonFields(typ)
		props := obj(c.t, schema, "properties")
		assert.ElementsMatch(c.t, keys(fields), keys(props), "%s: properties of Go %s", where, typ)
		if checkRequired {
			var always []string
			for k, f := range fields {
				if !f.omitempty {
					always = append(always, k)
				}
			}
			var required []string
			if r, ok := schema["required"].([]any); ok {
				for _, x := range r {
					required = append(required, x.(string))
				}
			}
			assert.ElementsMatch(c.t, always, required, "%s: required fields of Go %s", where, typ)
		}
		for k, f := range fields {
			if p, ok := props[k].(map[string]any); ok {
				c.check(where+"."+k, p, f.typ, checkRequired)
			}
		}
	case reflect.Map:
		c.check(where+"{}", obj(c.t, schema, "additionalProperties"), typ.Elem(), checkRequired)
	case reflect.Slice:
		c.check(where+"[]", obj(c.t, schema, "items"), typ.Elem(), checkRequired)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func ref(name string) map[string]any {
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	doc := loadOpenAPI(t)
	c := &schemaChecker{t: t, doc: doc, visited: make(map[string]bool)}

	responses := map[string]any{
		"Host": HostView{}, "HostList": HostList{}, "Network": NetworkView{}, "NetworkList": NetworkList{},
		"Port": PortView{}, "PortList": PortList{}, "Flow": FlowView{}, "FlowList": FlowList{}, "Error": ErrorBody{},
		"Cluster":    ClusterStatus{},
		"RemoteVTEP": topology.RemoteVTEP{}, "RemoteVTEPList": RemoteVTEPList{}, "BGPPeer": BGPPeerView{}, "BGPPeerList": BGPPeerList{},
		"VTEPList": VTEPList{},
		"Subnet":   topology.Subnet{}, "SubnetList": SubnetList{},
		"Trace": TraceView{}, "TraceHop": TraceHop{}, "TraceLookup": TraceLookup{}, "TraceOutput": TraceOutput{},
		"TraceEndpoint": TraceEndpoint{},
	}
	for name, v := range responses {
		c.check(name, ref(name), reflect.TypeOf(v), true)
	}
	requests := map[string]any{
		"HostRequest": HostRequest{}, "NetworkRequest": NetworkRequest{}, "PortRequest": PortRequest{}, "PortUpdate": PortUpdate{},
		"RemoteVTEPRequest": RemoteVTEPRequest{}, "BGPPeerRequest": BGPPeerRequest{},
		"SubnetRequest": SubnetRequest{},
	}
	for name, v := range requests {
		c.check(name, ref(name), reflect.TypeOf(v), false)
		schema, _ := resolve(t, doc, ref(name))
		// decodeBody rejects unknown fields.
		assert.Equal(t, false, schema["additionalProperties"], "%s must forbid unknown fields", name)
	}

	// A merge patch names fields of the object it changes, with their types.
	patches := map[string]any{"HostPatch": HostView{}, "NetworkPatch": NetworkView{}, "PortPatch": PortView{},
		"RemoteVTEPPatch": topology.RemoteVTEP{}, "BGPPeerPatch": BGPPeerView{}, "SubnetPatch": topology.Subnet{}}
	for name, v := range patches {
		schema, _ := resolve(t, doc, ref(name))
		c.visited[name] = true
		assert.Equal(t, "object", schema["type"], name)
		fields := jsonFields(reflect.TypeOf(v))
		for prop, p := range obj(t, schema, "properties") {
			f, ok := fields[prop]
			if assert.True(t, ok, "%s.%s is not a field of %T", name, prop, v) {
				c.check(name+"."+prop, p.(map[string]any), f.typ, false)
			}
		}
	}

	// Health is checked against the live answer in TestOpenAPIHealthAndEnums.
	c.visited["Health"] = true
	assert.ElementsMatch(t, keys(obj(t, obj(t, doc, "components"), "schemas")), keys(c.visited),
		"every component schema describes a Go type the API uses")
}

// enum returns the enum of component schema name.
func enum(t *testing.T, doc map[string]any, name string) []string {
	t.Helper()
	schema, _ := resolve(t, doc, ref(name))
	var out []string
	for _, v := range schema["enum"].([]any) {
		out = append(out, v.(string))
	}
	return out
}

func TestOpenAPIHealthAndEnums(t *testing.T) {
	doc := loadOpenAPI(t)
	assert.ElementsMatch(t, []string{
		codeInvalid, codeInvalidJSON, codeInvalidQuery, codeUnauthorized, codeForbidden, codeNotFound, codeMethodNotAllowed, codeConflict,
		codeTooLarge, codeUnsupportedMedia, codeInternal, codeUnavailable, codeNoSpace, codeNotApplied,
		codePreconditionFailed, codeNotBound, codeRequestTimeout,
	}, enum(t, doc, "ErrorCode"))
	assert.ElementsMatch(t, []string{Connected, Disconnected}, enum(t, doc, "ConnectionState"))
	var types []string
	for _, tt := range topology.TunnelTypes() {
		types = append(types, string(tt.Name))
	}
	assert.ElementsMatch(t, types, enum(t, doc, "NetworkType"))
	assert.ElementsMatch(t, []string{topology.IPv6SLAAC, topology.IPv6DHCPv6Stateful, topology.IPv6DHCPv6Stateless}, enum(t, doc, "IPv6AddressMode"))

	port, _ := resolve(t, doc, ref("Port"))
	var status []string
	for _, v := range obj(t, obj(t, port, "properties"), "status")["enum"].([]any) {
		status = append(status, v.(string))
	}
	assert.ElementsMatch(t, []string{PortPending, PortBound, PortError}, status)

	a := newTestAPI(t, nil)
	r := a.must("GET", "/healthz", "", http.StatusOK)
	health, _ := resolve(t, doc, ref("Health"))
	assert.ElementsMatch(t, keys(r.json(t)), keys(obj(t, health, "properties")))
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
}

// TestOpenAPIRequiredFieldsMatchBehaviour drops each property of a valid
// request body in turn: the API must reject exactly the ones the document
// calls required, naming the field, and accept the others.
func TestOpenAPIRequiredFieldsMatchBehaviour(t *testing.T) {
	doc := loadOpenAPI(t)
	const (
		hostSetup = "POST /v1/hosts " + h1Body
		netSetup  = "POST /v1/networks " + blueBody
		portSetup = "POST /v1/networks/blue/ports " + vm1Body
	)
	cases := []struct {
		schema, method, path, body string
		setup                      []string // "METHOD PATH BODY"
		// needs: an optional field another one needs; the two are left
		// out together (allowed_address_pairs needs the mac).
		needs map[string]string
	}{
		{schema: "HostRequest", method: "POST", path: "/v1/hosts",
			body: `{"name":"h1","ovsdb":"tcp:198.51.100.1:6640","tunnel_ip":"192.0.2.1","datapath_type":"netdev","description":"rack 1","tags":["a"]}`},
		{schema: "NetworkRequest", method: "POST", path: "/v1/networks",
			body: `{"name":"blue","type":"vxlan","segment_id":5001,"mac_learning":false,"evpn":true,"route_target":"65000:1","description":"blue","tags":["a"]}`},
		{schema: "RemoteVTEPRequest", method: "POST", path: "/v1/remote-vteps",
			body:  `{"name":"k1","tunnel_ip":"192.0.2.9","networks":["blue"],"macs":[{"mac":"02:00:00:00:09:01","ips":["198.18.0.9"]}],"description":"kernel","tags":["a"]}`,
			setup: []string{netSetup}},
		{schema: "BGPPeerRequest", method: "POST", path: "/v1/bgp/peers",
			body: `{"address":"198.51.100.9","asn":65000,"password":"pw","description":"frr","tags":["a"]}`},
		{schema: "PortRequest", method: "POST", path: "/v1/networks/blue/ports",
			body: `{"name":"vm1","host":"h1","interface":"tap0","mac":"02:00:00:00:00:01","ips":["198.18.0.1"],"device_id":"c1","admin_state_up":false,"description":"web","tags":["a"],` +
				`"port_security_enabled":true,"allowed_address_pairs":[{"ip_address":"198.18.0.100"}]}`,
			setup: []string{hostSetup, netSetup}, needs: map[string]string{"mac": "allowed_address_pairs"}},
		{schema: "PortUpdate", method: "PUT", path: "/v1/networks/blue/ports/vm1",
			body: `{"name":"vm1","host":"h1","interface":"tap1","mac":"02:00:00:00:00:02","ips":["198.18.0.2"],"device_id":"c1","admin_state_up":false,
				"description":"web","tags":["a"],"network":"blue","local_vlan":1,"revision_number":3,"status":"error","message":"ignored",` +
				`"port_security_enabled":true,"allowed_address_pairs":[{"ip_address":"198.18.0.100"}]}`,
			setup: []string{hostSetup, netSetup, portSetup}, needs: map[string]string{"mac": "allowed_address_pairs"}},
		{schema: "SubnetRequest", method: "POST", path: "/v1/networks/blue/subnets",
			body: `{"name":"v6","cidr":"2001:db8::/64","gateway_ip":"2001:db8::1","allocation_pools":[{"start":"2001:db8::10","end":"2001:db8::ff"}],
				"dns_servers":["2001:db8::53"],"host_routes":[{"destination":"2001:db8:8::/48","nexthop":"2001:db8::fe"}],"enable_dhcp":false,
				"ipv6_address_mode":"dhcpv6-stateless","description":"v6","tags":["a"]}`,
			setup: []string{netSetup}},
	}
	for _, tc := range cases {
		schema, _ := resolve(t, doc, ref(tc.schema))
		props := obj(t, schema, "properties")
		required := make(map[string]bool)
		for _, r := range schema["required"].([]any) {
			required[r.(string)] = true
		}
		var full map[string]any
		require.NoError(t, json.Unmarshal([]byte(tc.body), &full))
		require.ElementsMatch(t, keys(props), keys(full), "%s: the test body sets every property", tc.schema)

		for field := range props {
			t.Run(tc.schema+"/without_"+field, func(t *testing.T) {
				a := newTestAPI(t, nil)
				for _, s := range tc.setup {
					parts := strings.SplitN(s, " ", 3)
					a.must(parts[0], parts[1], parts[2], map[string]int{"POST": http.StatusCreated}[parts[0]])
				}
				body := make(map[string]any, len(full))
				for k, v := range full {
					if k != field && k != tc.needs[field] {
						body[k] = v
					}
				}
				raw, err := json.Marshal(body)
				require.NoError(t, err)
				r := a.do(tc.method, tc.path, string(raw))
				if !required[field] {
					assert.Equal(t, 2, r.status/100, "%s is optional, yet: %s", field, r.body)
					return
				}
				require.Equal(t, http.StatusBadRequest, r.status, "%s is required, yet: %s", field, r.body)
				var e ErrorBody
				require.NoError(t, json.Unmarshal(r.body, &e))
				assert.Equal(t, codeInvalid, e.Error.Code)
				assert.Equal(t, field, e.Error.Field)
			})
		}
	}
}

// TestAPIDocCoversEveryRoute keeps docs/api.md in step with the router:
// every route has a "### METHOD PATH" heading and nothing else does, and
// every error code is described.
func TestAPIDocCoversEveryRoute(t *testing.T) {
	raw, err := os.ReadFile("../docs/api.md")
	require.NoError(t, err)
	var headings []string
	for _, m := range regexp.MustCompile(`(?m)^### ([A-Z]+(?:, [A-Z]+)*) (/\S*)$`).FindAllStringSubmatch(string(raw), -1) {
		for _, method := range strings.Split(m[1], ", ") {
			headings = append(headings, method+" "+m[2])
		}
	}
	sort.Strings(headings)
	assert.Equal(t, routerRoutes(t), headings)
	for _, code := range enum(t, loadOpenAPI(t), "ErrorCode") {
		assert.Contains(t, string(raw), "| `"+code+"` |", "docs/api.md describes error code %s in its table", code)
	}
}
