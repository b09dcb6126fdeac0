package api

import (
	_ "embed"
	"net/http"
)

// spec is the OpenAPI 3.1 description of this API. The test suite validates
// every request and response it makes against it, so the two cannot drift.
//
//go:embed openapi.yaml
var spec []byte

func serveSpec(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(spec)
}
