package nix

import (
	"encoding/json"
	"reflect"
	"testing"
)

// The fast decoding of walker lines gives what encoding/json gives, and
// refuses what it refuses.
func TestSplitRecordsAgreesWithEncodingJSON(t *testing.T) {
	lines := []string{
		`[["c",["a","b"]],["d",["a"],"/nix/store/x-a.drv"]]`,
		`[["c",null]]`,
		`[["x",["throwing"],null],["n",["lib"]]]`,
		`[["r",["python3Packages"],["requests","six"]]]`,
		`[ [ "d" , [ "a b" , "q\"uote" ] , "/nix/store/y.drv" ] ]`,
		`[["d",["\u00e9t\u00e9","tab\there","nl\nx","back\\slash","$(rm -rf /)"],"/nix/store/z.drv"]]`,
		`[["d",["été","日本"],"/nix/store/u.drv"]]`,
		`[["i",["hello"],{"name":"hello-1.0","out":{"out":"/nix/store/h"},"pos":"a.nix:3","broken":false,"sup":true,"feat":[],"tests":{"t":null,"u":"/nix/store/t.drv"}}]]`,
		`[["w",1]]`,
		`[]`,
		`[[]]`,
		"[[\"d\",[\"bad\xffutf8\"],\"/nix/store/b.drv\"]]",
	}
	for _, line := range lines {
		var want [][]json.RawMessage
		if err := json.Unmarshal([]byte(line), &want); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		got, err := splitRecords([]byte(line))
		if err != nil {
			t.Errorf("%s: %v", line, err)
			continue
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d records, want %d", line, len(got), len(want))
			continue
		}
		for i := range want {
			if len(got[i]) != len(want[i]) {
				t.Errorf("%s: record %d has %d elements, want %d", line, i, len(got[i]), len(want[i]))
				continue
			}
			for j := range want[i] {
				var w, g any
				json.Unmarshal(want[i][j], &w)
				if err := json.Unmarshal(got[i][j], &g); err != nil || !reflect.DeepEqual(g, w) {
					t.Errorf("%s: element %d.%d = %s, want %s", line, i, j, got[i][j], want[i][j])
				}
				switch w := w.(type) {
				case string:
					if s, err := decodeString(got[i][j]); err != nil || s != w {
						t.Errorf("decodeString(%s) = %q, %v; want %q", got[i][j], s, err, w)
					}
				case []any:
					var ws []string
					if json.Unmarshal(want[i][j], &ws) == nil {
						if s, err := decodeStrings(got[i][j]); err != nil || !reflect.DeepEqual(s, ws) {
							t.Errorf("decodeStrings(%s) = %q, %v; want %q", got[i][j], s, err, ws)
						}
					}
				}
			}
		}
	}
	for _, bad := range []string{``, `[`, `[[`, `[["d"`, `[["d",["a"]`, `[["d" ["a"]]]`, `[["d",["a"]] x`, `[["d","unterminated]]`, `{}`, `[1]`} {
		if _, err := splitRecords([]byte(bad)); err == nil {
			t.Errorf("splitRecords(%q) accepted", bad)
		}
	}
	for _, bad := range []string{`["a" "b"]`, `["a",]`, `[1]`, `"a"`, `["a"`} {
		if _, err := decodeStrings(json.RawMessage(bad)); err == nil {
			t.Errorf("decodeStrings(%q) accepted", bad)
		}
	}
}
