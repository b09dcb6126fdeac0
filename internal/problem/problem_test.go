package problem_test

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/microapps/microapps/internal/problem"
)

func TestWrite(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	p := problem.New(400, "validation", "Invalid request", "see errors")
	p.Errors = []problem.FieldError{{Field: "limit", Message: "must be from 1 to 500"}}
	problem.Write(rec, p)
	if rec.Code != 400 || rec.Header().Get("Content-Type") != "application/problem+json" ||
		rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["type"] != problem.TypeBase+"validation" || got["status"] != 400.0 || got["errors"].([]any)[0].(map[string]any)["field"] != "limit" {
		t.Fatalf("%v", got)
	}
	if _, ok := got["instance"]; ok {
		t.Fatal("an empty instance is written")
	}
}
