package northbound

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/brtun/brtun/topology"
)

// Query parameters every list takes besides its filters.
const (
	querySort   = "sort"
	queryLimit  = "limit"
	queryMarker = "marker"
)

// MaxListLimit is the largest ?limit a list accepts.
const MaxListLimit = 1000

// fieldKind says how a list field is filtered and sorted.
type fieldKind int

const (
	fieldText   fieldKind = iota // exact match, sorted as strings
	fieldNumber                  // exact match of a decimal, sorted as numbers
	fieldBool                    // true or false; false sorts first
	fieldSet                     // tags, ips: the object holds every value asked for; not sortable
)

// listField is a field a list can be filtered (?field=value) and sorted
// (?sort=field) by. Exactly one accessor is set, after kind.
type listField[T any] struct {
	kind   fieldKind
	text   func(T) string   // fieldText
	number func(T) uint64   // fieldNumber
	flag   func(T) bool     // fieldBool
	set    func(T) []string // fieldSet
}

func textField[T any](f func(T) string) listField[T] {
	return listField[T]{kind: fieldText, text: f}
}

func numberField[T any](f func(T) uint64) listField[T] {
	return listField[T]{kind: fieldNumber, number: f}
}

func boolField[T any](f func(T) bool) listField[T] {
	return listField[T]{kind: fieldBool, flag: f}
}

func setField[T any](f func(T) []string) listField[T] {
	return listField[T]{kind: fieldSet, set: f}
}

// sortValue is a field's value as a sort key (numbers and booleans as numbers).
type sortValue struct {
	S string `json:"s,omitempty"`
	N uint64 `json:"n,omitempty"`
}

func (f listField[T]) sortValue(v T) sortValue {
	switch f.kind {
	case fieldNumber:
		return sortValue{N: f.number(v)}
	case fieldBool:
		if f.flag(v) {
			return sortValue{N: 1}
		}
		return sortValue{}
	}
	return sortValue{S: f.text(v)}
}

func compareSortValues(a, b sortValue) int {
	return cmp.Or(cmp.Compare(a.N, b.N), cmp.Compare(a.S, b.S))
}

// listSpec describes one list: its fields and the key that identifies an
// object (unique, the last sort key, so that every order is total).
type listSpec[T any] struct {
	fields map[string]listField[T]
	key    func(T) string
}

// sortKey is one ?sort entry.
type sortKey struct {
	field string
	desc  bool
}

// listQuery is a parsed list request.
type listQuery[T any] struct {
	filters []func(T) bool
	sort    []sortKey
	sortRaw string // ?sort as given, canonical; markers carry it
	limit   int    // 0: everything
	after   *cursor
}

// cursor is what a marker encodes: the position of the last object of a
// page in the list's order. The next page starts right after it, wherever
// objects were inserted or deleted meanwhile.
type cursor struct {
	Sort   string      `json:"o"`
	Values []sortValue `json:"v"`
	Key    string      `json:"k"`
}

// parseList reads a list's query: filters, sort, limit and marker. Any
// other parameter answers 400 invalid_query.
func (s listSpec[T]) parseList(r *http.Request) (listQuery[T], error) {
	var q listQuery[T]
	allowed := []string{querySort, queryLimit, queryMarker}
	for name := range s.fields {
		allowed = append(allowed, name)
	}
	sort.Strings(allowed)
	if err := checkQuery(r, allowed...); err != nil {
		return q, err
	}
	values := r.URL.Query()
	for name, vals := range values {
		f, ok := s.fields[name]
		if !ok {
			continue
		}
		match, err := f.filter(name, vals)
		if err != nil {
			return q, err
		}
		q.filters = append(q.filters, match)
	}
	if raw := values.Get(querySort); raw != "" {
		var canon []string
		for _, part := range strings.Split(raw, ",") {
			k := sortKey{field: strings.TrimPrefix(part, "-"), desc: strings.HasPrefix(part, "-")}
			f, ok := s.fields[k.field]
			if !ok || f.kind == fieldSet {
				return q, apiErr(http.StatusBadRequest, codeInvalidQuery, "sort=%q: %q is not a sortable field (want %s, each optionally prefixed by '-')",
					topology.Clip(raw), topology.Clip(k.field), strings.Join(s.sortable(), ", "))
			}
			q.sort = append(q.sort, k)
			canon = append(canon, part)
		}
		q.sortRaw = strings.Join(canon, ",")
	}
	if raw := values.Get(queryLimit); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > MaxListLimit {
			return q, apiErr(http.StatusBadRequest, codeInvalidQuery, "limit=%q: want 1..%d", topology.Clip(raw), MaxListLimit)
		}
		q.limit = n
	}
	if raw := values.Get(queryMarker); raw != "" {
		c, err := decodeMarker(raw)
		if err != nil || c.Sort != q.sortRaw || len(c.Values) != len(q.sort) {
			return q, apiErr(http.StatusBadRequest, codeInvalidQuery,
				"marker=%q is not a marker of this list and sort (pass next_marker of the previous page unchanged)", topology.Clip(raw))
		}
		q.after = &c
	}
	return q, nil
}

func (s listSpec[T]) sortable() []string {
	var out []string
	for name, f := range s.fields {
		if f.kind != fieldSet {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// filter builds the test of ?name=vals. Several values of one parameter
// match any of them; a set field's value is a comma-separated list the
// object must hold all of (?tags=a,b).
func (f listField[T]) filter(name string, vals []string) (func(T) bool, error) {
	var tests []func(T) bool
	for _, val := range vals {
		switch f.kind {
		case fieldText:
			tests = append(tests, func(v T) bool { return f.text(v) == val })
		case fieldNumber:
			n, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				return nil, apiErr(http.StatusBadRequest, codeInvalidQuery, "%s=%q: want a number", name, topology.Clip(val))
			}
			tests = append(tests, func(v T) bool { return f.number(v) == n })
		case fieldBool:
			b, err := strconv.ParseBool(val)
			if err != nil {
				return nil, apiErr(http.StatusBadRequest, codeInvalidQuery, "%s=%q: want true or false", name, topology.Clip(val))
			}
			tests = append(tests, func(v T) bool { return f.flag(v) == b })
		case fieldSet:
			want := strings.Split(val, ",")
			tests = append(tests, func(v T) bool {
				have := f.set(v)
				for _, w := range want {
					if !slices.Contains(have, w) {
						return false
					}
				}
				return true
			})
		}
	}
	return func(v T) bool {
		return slices.ContainsFunc(tests, func(test func(T) bool) bool { return test(v) })
	}, nil
}

// apply filters, sorts and pages items. It returns the page and the marker
// of the next one ("" on the last page).
func (s listSpec[T]) apply(q listQuery[T], items []T) ([]T, string) {
	out := []T{}
	for _, it := range items {
		if !slices.ContainsFunc(q.filters, func(match func(T) bool) bool { return !match(it) }) {
			out = append(out, it)
		}
	}
	slices.SortStableFunc(out, func(a, b T) int { return s.compare(q, s.cursorOf(q, a), s.cursorOf(q, b)) })
	if q.after != nil {
		i, _ := slices.BinarySearchFunc(out, *q.after, func(it T, c cursor) int { return s.compare(q, s.cursorOf(q, it), c) })
		if i < len(out) && s.compare(q, s.cursorOf(q, out[i]), *q.after) == 0 {
			i++ // the marker's own object was on the previous page
		}
		out = out[i:]
	}
	if q.limit == 0 || len(out) <= q.limit {
		return out, ""
	}
	out = out[:q.limit]
	return out, encodeMarker(s.cursorOf(q, out[len(out)-1]))
}

func (s listSpec[T]) cursorOf(q listQuery[T], v T) cursor {
	c := cursor{Sort: q.sortRaw, Key: s.key(v)}
	for _, k := range q.sort {
		c.Values = append(c.Values, s.fields[k.field].sortValue(v))
	}
	return c
}

// compare orders two positions by the sort keys, then by the object key.
func (s listSpec[T]) compare(q listQuery[T], a, b cursor) int {
	for i, k := range q.sort {
		c := compareSortValues(a.Values[i], b.Values[i])
		if k.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return cmp.Compare(a.Key, b.Key)
}

func encodeMarker(c cursor) string {
	raw, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("encode list marker: %v", err)) // plain strings and numbers always encode
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

func decodeMarker(s string) (cursor, error) {
	var c cursor
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(raw, &c)
}

// setNextLink adds a Link header to the next page, when there is one.
func setNextLink(w http.ResponseWriter, r *http.Request, next string) {
	if next == "" {
		return
	}
	q := r.URL.Query()
	q.Set(queryMarker, next)
	w.Header().Set("Link", "<"+r.URL.EscapedPath()+"?"+q.Encode()+`>; rel="next"`)
}

// withMeta adds the fields every object carries (description, tags,
// revision_number) to a list's fields.
func withMeta[T any](fields map[string]listField[T], meta func(T) topology.Meta) map[string]listField[T] {
	fields["description"] = textField(func(v T) string { return meta(v).Description })
	fields["tags"] = setField(func(v T) []string { return meta(v).Tags })
	fields["revision_number"] = numberField(func(v T) uint64 { return meta(v).RevisionNumber })
	return fields
}
