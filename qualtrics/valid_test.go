package qualtrics

import (
	"encoding/json"
	"strings"
	"testing"
)

// validJSON must give encoding/json's verdict on every input.
func FuzzValidJSONAgrees(f *testing.F) {
	for _, s := range []string{
		``, ` `, `null`, `nul`, `nulll`, `true`, `false`, `tru`, `0`, `-0`, `01`, `-`, `1.`, `1.5`, `.5`, `1e`, `1e+`, `1E-7`,
		`-12.5e+3`, `1x`, `"x"`, `"x`, `"\u00e9"`, `"\u00g9"`, `"\x"`, "\"a\tb\"", "\"\xff\"", `"\/\b\f\n\r\t\"\\"`,
		`{}`, `{ }`, `[]`, `[ ]`, `{]`, `[}`, `[1,]`, `[,1]`, `{"a":1,}`, `{"a" 1}`, `{"a":}`, `{1:2}`, `{"a":1 "b":2}`,
		`[1 2]`, `[[[]]]`, `[[[]]`, `{"a":{"b":[1,{"c":null}]}}`, ` {"a" : [ true , false ] } `, `{} {}`, `[] x`,
		`{"result":{"elements":[{"contactId":"a"}],"nextPage":null},"meta":{"httpStatus":"200 - OK"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Add(historyPage(3))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, encoding/json says %v", b, got, want)
		}
	})
}

func TestValidJSONNestingLimit(t *testing.T) {
	for _, depth := range []int{maxNestingDepth - 1, maxNestingDepth, maxNestingDepth + 1} {
		for _, pair := range [][2]string{{"[", "]"}, {`{"a":`, "}"}} {
			inner := "[]"
			if pair[0] != "[" {
				inner = "{}"
			}
			b := []byte(strings.Repeat(pair[0], depth-1) + inner + strings.Repeat(pair[1], depth-1))
			if got, want := validJSON(b), json.Valid(b); got != want {
				t.Errorf("%s nested %d deep: validJSON %v, encoding/json %v", pair[0], depth, got, want)
			}
		}
	}
}

func BenchmarkValidJSON(b *testing.B) {
	page := historyPage(500)
	b.SetBytes(int64(len(page)))
	b.Run("validJSON", func(b *testing.B) {
		for b.Loop() {
			if !validJSON(page) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if !json.Valid(page) {
				b.Fatal("invalid")
			}
		}
	})
}
