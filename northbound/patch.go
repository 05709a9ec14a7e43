package northbound

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
)

// readPatch reads the body of a PATCH: a JSON merge patch (RFC 7396), sent
// as application/merge-patch+json or application/json, which must be a
// JSON object.
func readPatch(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	raw, err := readBody(w, r, mediaMergePatch, mediaJSON)
	if err != nil {
		return nil, err
	}
	var patch map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep large integers exact
	if err := dec.Decode(&patch); err != nil {
		return nil, jsonError(err)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err == nil {
		return nil, apiErr(http.StatusBadRequest, codeInvalidJSON, "request body holds more than one JSON value")
	}
	if patch == nil {
		return nil, apiErr(http.StatusBadRequest, codeInvalidJSON, "a merge patch must be a JSON object")
	}
	return patch, nil
}

// mergePatch applies patch to the JSON form of cur (RFC 7396: members set
// replace, null removes, objects merge) and decodes the result as a new V,
// refusing unknown fields and wrong types like a request body.
func mergePatch[V any](cur V, patch map[string]any) (V, error) {
	var next V
	raw, err := json.Marshal(cur)
	if err != nil {
		return next, err
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return next, err
	}
	merged, err := json.Marshal(mergeValue(doc, patch))
	if err != nil {
		return next, err
	}
	if err := decodeStrict(merged, &next); err != nil {
		return next, err
	}
	return next, nil
}

// mergeValue is RFC 7396's MergePatch(target, patch).
func mergeValue(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
		} else {
			t[k] = mergeValue(t[k], v)
		}
	}
	return t
}

// answerOnly fails naming field when a write changed a field the API
// computes (mtu): answers may be sent back, unchanged.
func answerOnly(field string, before, after any) error {
	if reflect.DeepEqual(before, after) {
		return nil
	}
	ae := apiErr(http.StatusBadRequest, codeInvalid, "%s: is computed by brtun; send it unchanged or leave it out", field)
	ae.detail.Field = field
	return ae
}
