package fakegithub

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// operation is one endpoint of GitHub's OpenAPI description.
type operation struct {
	method, template string
	id               string // operationId, e.g. "checks/create"
	pattern          *regexp.Regexp
	params           []string
	body             map[string]any // request body schema, nil when none
	bodyRequired     bool
}

// loadOperations reads the operations of the REST API subset.
func loadOperations(path string) ([]*operation, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fake github: %w", err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			RequestBody struct {
				Required bool `json:"required"`
				Content  map[string]struct {
					Schema map[string]any `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("fake github: %s: %w", path, err)
	}
	var ops []*operation
	// QuoteMeta escapes the braces of "{owner}": match the escaped form.
	param := regexp.MustCompile(`\\\{([a-z_]+)\\\}`)
	for tmpl, methods := range doc.Paths {
		var params []string
		re := "^" + param.ReplaceAllStringFunc(regexp.QuoteMeta(tmpl), func(m string) string {
			params = append(params, strings.Trim(m, `\{}`))
			return "([^/]+)"
		}) + "$"
		for method, op := range methods {
			o := &operation{method: strings.ToUpper(method), template: tmpl, id: op.OperationID, pattern: regexp.MustCompile(re), params: params}
			if c, ok := op.RequestBody.Content["application/json"]; ok {
				o.body = c.Schema
				o.bodyRequired = op.RequestBody.Required
			}
			ops = append(ops, o)
		}
	}
	return ops, nil
}

// dataDir is where the fake's GitHub data lives in the repository: the
// OpenAPI subset, its licence and the real webhook payloads, copied from
// ../shared/github so that the tests pass in a clone with nothing beside it.
const dataDir = "internal/fakegithub/testdata/github"

// SchemaPath returns where the OpenAPI subset is (rest-api-subset.json),
// found from the module root (the directory holding go.mod), wherever the
// test runs.
func SchemaPath() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, dataDir, "rest-api-subset.json")
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("fake github: %w", err)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("fake github: no go.mod above the working directory")
		}
		dir = parent
	}
}

// validate checks v against the JSON schema s (the keywords GitHub's
// description uses: type, nullable, properties, required, enum, items,
// maxItems, minItems, maxLength, anyOf, oneOf, additionalProperties) and
// returns the violations, each with its JSON path.
func validate(s map[string]any, v any, path string) []string {
	if s == nil {
		return nil
	}
	if v == nil {
		if s["nullable"] == true || s["type"] == nil {
			return nil
		}
		return []string{path + ": null is not allowed"}
	}
	var errs []string
	if t, ok := s["type"].(string); ok && !hasType(v, t) {
		return []string{fmt.Sprintf("%s: want %s, got %s", path, t, jsonType(v))}
	}
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			if e == v {
				found = true
			}
		}
		if !found {
			errs = append(errs, fmt.Sprintf("%s: %v is not one of %v", path, v, enum))
		}
	}
	switch v := v.(type) {
	case string:
		if max, ok := s["maxLength"].(float64); ok && utf8.RuneCountInString(v) > int(max) {
			errs = append(errs, fmt.Sprintf("%s: %d characters, more than %d", path, utf8.RuneCountInString(v), int(max)))
		}
		if e := describedLimit(s, v, path); e != "" {
			errs = append(errs, e)
		}
	case []any:
		if max, ok := s["maxItems"].(float64); ok && len(v) > int(max) {
			errs = append(errs, fmt.Sprintf("%s: %d items, more than %d", path, len(v), int(max)))
		}
		if min, ok := s["minItems"].(float64); ok && len(v) < int(min) {
			errs = append(errs, fmt.Sprintf("%s: %d items, fewer than %d", path, len(v), int(min)))
		}
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range v {
				errs = append(errs, validate(items, e, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := v[r.(string)]; !ok {
					errs = append(errs, fmt.Sprintf("%s: %q is required", path, r))
				}
			}
		}
		for k, e := range v {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if s["additionalProperties"] == false {
					errs = append(errs, fmt.Sprintf("%s: unknown field %q", path, k))
				}
				continue
			}
			errs = append(errs, validate(ps, e, path+"."+k)...)
		}
	}
	if any, ok := s["anyOf"].([]any); ok && !matchesSome(any, v, path, 1, len(any)) {
		errs = append(errs, fmt.Sprintf("%s: matches none of anyOf", path))
	}
	if one, ok := s["oneOf"].([]any); ok && !matchesSome(one, v, path, 1, 1) {
		errs = append(errs, fmt.Sprintf("%s: does not match exactly one of oneOf", path))
	}
	return errs
}

// limitRe finds the limits GitHub gives only in a field's description
// ("The maximum size is 255 characters.", "The maximum size is 64 KB.").
var limitRe = regexp.MustCompile(`[Tt]he maximum size is (\d+) (characters|KB)`)

// describedLimit checks a string against the limit its description
// states, and returns the violation or "".
func describedLimit(s map[string]any, v, path string) string {
	desc, _ := s["description"].(string)
	m := limitRe.FindStringSubmatch(desc)
	if m == nil {
		return ""
	}
	n, _ := strconv.Atoi(m[1])
	if m[2] == "KB" {
		if len(v) > n<<10 {
			return fmt.Sprintf("%s: %d bytes, more than %d KB", path, len(v), n)
		}
		return ""
	}
	if c := utf8.RuneCountInString(v); c > n {
		return fmt.Sprintf("%s: %d characters, more than %d", path, c, n)
	}
	return ""
}

// matchesSome reports whether v matches between min and max of schemas.
func matchesSome(schemas []any, v any, path string, min, max int) bool {
	n := 0
	for _, sc := range schemas {
		if m, ok := sc.(map[string]any); ok && len(validate(m, v, path)) == 0 {
			n++
		}
	}
	return n >= min && n <= max
}

func hasType(v any, t string) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == float64(int64(f))
	case "number":
		_, ok := v.(float64)
		return ok
	}
	return true
}

func jsonType(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64:
		return "number"
	}
	return "null"
}
