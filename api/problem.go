package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/microapps/microapps/internal/problem"
)

type fieldError = problem.FieldError

// apiError is what handlers return; writeError turns it into a problem.
type apiError struct {
	status int
	kind   string
	title  string
	detail string
	fields []fieldError
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.title, e.detail) }

func errBadRequest(detail string) *apiError {
	return &apiError{status: http.StatusBadRequest, kind: "bad-request", title: "Bad request", detail: detail}
}

func errValidation(fields []fieldError) *apiError {
	return &apiError{status: http.StatusBadRequest, kind: "validation", title: "Invalid request",
		detail: "Some fields are not valid; see errors.", fields: fields}
}

func errNotFound(what string) *apiError {
	return &apiError{status: http.StatusNotFound, kind: "not-found", title: "Not found", detail: what + " does not exist."}
}

func errUnprocessable(detail string) *apiError {
	return &apiError{status: http.StatusUnprocessableEntity, kind: "credentials-rejected", title: "Qualtrics rejected the credentials", detail: detail}
}

func errBadGateway(detail string) *apiError {
	return &apiError{status: http.StatusBadGateway, kind: "qualtrics-unreachable", title: "Qualtrics could not be reached", detail: detail}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

const maxBody = 1 << 20

// decodeStrict reads one JSON object into dst: unknown fields, trailing data
// and bodies over 1 MiB are refused, and a syntax error says where it is.
func decodeStrict(w http.ResponseWriter, r *http.Request, dst any) *apiError {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return &apiError{status: http.StatusUnsupportedMediaType, kind: "unsupported-media-type", title: "Unsupported media type",
			detail: "Send the body as application/json."}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return jsonError(err)
		}
		return errBadRequest("The body must hold a single JSON object and nothing after it.")
	}
	return nil
}

func jsonError(err error) *apiError {
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
		tooBig  *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooBig):
		return &apiError{status: http.StatusRequestEntityTooLarge, kind: "too-large", title: "Body too large",
			detail: "The body must be at most 1 MiB."}
	case errors.As(err, &syntax):
		return errBadRequest(fmt.Sprintf("The body is not valid JSON (at byte %d).", syntax.Offset))
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return errBadRequest("The body must be a JSON object.")
		}
		return errValidation([]fieldError{{Field: field, Message: fmt.Sprintf("must be %s", jsonKind(typeErr.Type.Kind().String()))}})
	case errors.Is(err, io.EOF):
		return errBadRequest("The body is empty; send a JSON object.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errBadRequest("The body ends in the middle of a JSON value.")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return errValidation([]fieldError{{Field: name, Message: "is not a known field"}})
	default:
		return errBadRequest("The body could not be read as JSON.")
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int64", "int32", "float64":
		return "a number"
	case "ptr", "struct", "map":
		return "an object"
	case "slice":
		return "an array"
	default:
		return "of another type"
	}
}
