package northbound

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/brtun/brtun/topology"
)

// etag is the strong entity tag of an object at revision_number rev.
func etag(rev uint64) string { return `"` + strconv.FormatUint(rev, 10) + `"` }

// setETag puts an object's entity tag on the answer.
func setETag(w http.ResponseWriter, rev uint64) { w.Header().Set("ETag", etag(rev)) }

// parseIfMatch reads the If-Match headers of a write (RFC 9110 13.1.1):
// "*" or a list of entity tags. It returns nil (no precondition) when there
// is none or "*" (the object must merely exist). The revisions an
// If-Match names may be none at all: weak tags never match (If-Match uses
// the strong comparison) and neither do tags that are not revisions, and
// the write then fails with 412. A malformed header also answers 412.
func parseIfMatch(headers []string) (topology.IfMatch, error) {
	if len(headers) == 0 {
		return nil, nil
	}
	value := strings.TrimSpace(strings.Join(headers, ","))
	if value == "*" {
		return nil, nil
	}
	revs := topology.IfMatch{}
	for rest := value; ; {
		rest = strings.TrimLeft(rest, " \t")
		weak := strings.HasPrefix(rest, "W/")
		rest = strings.TrimPrefix(rest, "W/")
		tag, after, ok := cutQuoted(rest)
		if !ok {
			return nil, preconditionErr("If-Match %q is not a list of entity tags such as \"5\"", topology.Clip(value))
		}
		if n, err := strconv.ParseUint(tag, 10, 64); err == nil && !weak && tag == strconv.FormatUint(n, 10) {
			revs = append(revs, n)
		}
		after = strings.TrimLeft(after, " \t")
		if after == "" {
			return revs, nil
		}
		if after[0] != ',' {
			return nil, preconditionErr("If-Match %q is not a list of entity tags such as \"5\"", topology.Clip(value))
		}
		rest = after[1:]
	}
}

// cutQuoted splits `"tag"rest` into tag and rest; entity tags hold no '"'
// and no control characters.
func cutQuoted(s string) (tag, rest string, ok bool) {
	if !strings.HasPrefix(s, `"`) {
		return "", "", false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		return "", "", false
	}
	tag = s[1 : end+1]
	for _, c := range []byte(tag) {
		if c < 0x21 || c == 0x7f {
			return "", "", false
		}
	}
	return tag, s[end+2:], true
}

func preconditionErr(format string, args ...any) *apiError {
	return apiErr(http.StatusPreconditionFailed, codePreconditionFailed, format, args...)
}
