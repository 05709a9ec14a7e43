package main

import (
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// metaFlags adds the --description and --tag flags every object takes.
func metaFlags(cmd *cobra.Command, description *string, tags *[]string) {
	cmd.Flags().StringVar(description, "description", "", "free text describing the object")
	cmd.Flags().StringArrayVar(tags, "tag", nil, "a tag (repeat for more; on set, the tags replace the stored ones, --tag '' clears them)")
}

// fieldValue is the API field a flag sets and the flag's value.
type fieldValue struct {
	field string
	value any
}

// changedFields is the merge patch of the flags the user gave, keyed by
// flag name in fields.
func changedFields(cmd *cobra.Command, fields map[string]fieldValue) map[string]any {
	patch := map[string]any{}
	for flag, f := range fields {
		if cmd.Flags().Changed(flag) {
			patch[f.field] = f.value
		}
	}
	return patch
}

// tagsOrEmpty drops empty tags, so that --tag ” sets no tags.
func tagsOrEmpty(tags []string) []string {
	out := []string{}
	for _, t := range tags {
		if t != "" {
			out = append(out, t)
		}
	}
	return out
}

// tagQuery filters a list by tags (all of them).
func tagQuery(tags []string) url.Values {
	q := url.Values{}
	if len(tags) > 0 {
		q.Set("tags", strings.Join(tags, ","))
	}
	return q
}
