package apidocs

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// Operations lists spec's operations as ServeMux patterns ("GET /api/v1/users/{id}"), sorted.
func Operations(spec []byte) ([]string, error) {
	js, err := ToJSON(spec)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, err
	}
	var ops []string
	for path, item := range doc.Paths {
		for key := range item {
			// Path items also hold parameters, summary and the like.
			if slices.Contains(methods, key) {
				ops = append(ops, strings.ToUpper(key)+" "+path)
			}
		}
	}
	slices.Sort(ops)
	return ops, nil
}

// CheckRoutes compares the patterns a router registers with spec's operations and describes
// every route found on one side only; nil when they match. Patterns without a method (a
// catch-all such as "/api/") are no operation: name them in fallbacks, or they count as missing.
func CheckRoutes(spec []byte, routes []string, fallbacks ...string) error {
	ops, err := Operations(spec)
	if err != nil {
		return err
	}
	var served []string
	for _, r := range routes {
		if slices.Contains(fallbacks, r) {
			continue
		}
		// "/{$}" matches "/" alone, which is what an OpenAPI path "/" means.
		served = append(served, strings.ReplaceAll(r, "{$}", ""))
	}
	slices.Sort(served)
	var problems []string
	for _, r := range served {
		if _, found := slices.BinarySearch(ops, r); !found {
			problems = append(problems, "routed but not in the spec: "+r)
		}
	}
	for _, op := range ops {
		if _, found := slices.BinarySearch(served, op); !found {
			problems = append(problems, "in the spec but not routed: "+op)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return nil
}
