// Package nixos makes the NixOS module's typed options
// (nix/options.nix) from config.example.yml, so that the module's
// options, their types, defaults and descriptions are the example
// configuration's, and stay so: a test compares the file with what
// Options gives (go test ./internal/nixos -update rewrites it).
package nixos

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Options returns nix/options.nix for the configuration example: a
// function of lib giving, for each key the example sets, an option of the
// type its value has, that value as default and the comment above it as
// description. Keys the example only mentions in comments are not typed
// options: the module's settings are freeform and take them.
func Options(example []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(example, &doc); err != nil {
		return nil, fmt.Errorf("config example: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config example: not a mapping")
	}
	var b strings.Builder
	b.WriteString("# Generated from config.example.yml by internal/nixos (go test ./internal/nixos -update):\n")
	b.WriteString("# the typed options of services.basinix.settings, defaults and descriptions as there.\n")
	b.WriteString("{ lib }:\n\n")
	if err := writeOptions(&b, doc.Content[0], 0); err != nil {
		return nil, err
	}
	b.WriteString("\n")
	return []byte(b.String()), nil
}

func writeOptions(b *strings.Builder, m *yaml.Node, depth int) error {
	indent := strings.Repeat("  ", depth)
	b.WriteString("{\n")
	for i := 0; i+1 < len(m.Content); i += 2 {
		key, val := m.Content[i], m.Content[i+1]
		name := nixName(key.Value)
		desc := description(key.HeadComment)
		if val.Kind == yaml.MappingNode && len(val.Content) > 0 && !isStringMap(key.Value) {
			if desc != "" {
				fmt.Fprintf(b, "%s  # %s\n", indent, strings.ReplaceAll(desc, "\n", "\n"+indent+"  # "))
			}
			fmt.Fprintf(b, "%s  %s = ", indent, name)
			if err := writeOptions(b, val, depth+1); err != nil {
				return err
			}
			b.WriteString(";\n")
			continue
		}
		typ, def, err := nixValue(key.Value, val)
		if err != nil {
			return err
		}
		fmt.Fprintf(b, "%s  %s = lib.mkOption {\n%s    type = %s;\n%s    default = %s;\n", indent, name, indent, typ, indent, def)
		if desc != "" {
			fmt.Fprintf(b, "%s    description = %s;\n", indent, nixString(desc))
		}
		fmt.Fprintf(b, "%s  };\n", indent)
	}
	b.WriteString(indent + "}")
	return nil
}

// isStringMap names the mappings whose keys are data (systems, option
// names), not options: attrsOf str.
func isStringMap(key string) bool {
	return key == "rebuild_labels" || key == "options"
}

// nixValue is the option type and default of a value of the example.
func nixValue(key string, v *yaml.Node) (typ, def string, err error) {
	switch v.Kind {
	case yaml.ScalarNode:
		switch v.Tag {
		case "!!bool":
			return "lib.types.bool", v.Value, nil
		case "!!int":
			n, err := strconv.ParseInt(v.Value, 10, 64)
			if err != nil {
				return "", "", fmt.Errorf("config example: %s: %w", key, err)
			}
			return "lib.types.int", strconv.FormatInt(n, 10), nil
		case "!!str":
			return "lib.types.str", nixString(v.Value), nil
		case "!!float":
			f, err := strconv.ParseFloat(v.Value, 64)
			if err != nil {
				return "", "", fmt.Errorf("config example: %s: %w", key, err)
			}
			s := strconv.FormatFloat(f, 'f', -1, 64)
			if !strings.Contains(s, ".") {
				s += ".0"
			}
			return "lib.types.number", s, nil
		}
	case yaml.SequenceNode:
		var items []string
		for _, it := range v.Content {
			if it.Kind != yaml.ScalarNode {
				return "", "", fmt.Errorf("config example: %s: a list of other than strings", key)
			}
			items = append(items, nixString(it.Value))
		}
		if len(items) == 0 {
			return "lib.types.listOf lib.types.str", "[ ]", nil
		}
		return "lib.types.listOf lib.types.str", "[ " + strings.Join(items, " ") + " ]", nil
	case yaml.MappingNode:
		var kv []string
		for i := 0; i+1 < len(v.Content); i += 2 {
			kv = append(kv, fmt.Sprintf("%s = %s;", nixName(v.Content[i].Value), nixString(v.Content[i+1].Value)))
		}
		if len(kv) == 0 && !isStringMap(key) {
			return "lib.types.attrsOf lib.types.anything", "{ }", nil
		}
		if len(kv) == 0 {
			return "lib.types.attrsOf lib.types.str", "{ }", nil
		}
		return "lib.types.attrsOf lib.types.str", "{ " + strings.Join(kv, " ") + " }", nil
	}
	return "", "", fmt.Errorf("config example: %s: a value of kind %v, tag %s", key, v.Kind, v.Tag)
}

// description is a key's comment without the "# ", one line per line.
func description(comment string) string {
	var lines []string
	for _, l := range strings.Split(comment, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, strings.TrimSpace(strings.TrimPrefix(l, "#")))
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

func nixName(s string) string {
	for _, c := range s {
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return nixString(s)
		}
	}
	return s
}

// nixString is s as a Nix string literal.
func nixString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "${", `\${`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}
