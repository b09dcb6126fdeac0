package qualtrics

import (
	"golang.org/x/oauth2"

	"errors"
	"fmt"
	"net/http"
)

// ErrPaginationLoop is returned when the API hands out a nextPage link it has
// already handed out during the same walk: following it would never end.
var ErrPaginationLoop = errors.New("qualtrics: pagination loop: nextPage repeated")

// APIError is a non-2xx answer of the API. It never holds the credentials.
type APIError struct {
	Endpoint     string // stable template name, e.g. "surveys.get"
	Method       string
	Path         string // URL path without the query
	StatusCode   int
	ErrorCode    string // meta.error.errorCode, e.g. "GED_3"; may be empty
	ErrorMessage string // meta.error.errorMessage; may be empty
	RequestID    string // meta.requestId; empty when the API sent null
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("qualtrics: %s: %d %s", e.Endpoint, e.StatusCode, http.StatusText(e.StatusCode))
	if e.ErrorCode != "" {
		s += " (" + e.ErrorCode + ")"
	}
	if e.ErrorMessage != "" {
		s += ": " + e.ErrorMessage
	}
	if e.RequestID != "" {
		s += " [request " + e.RequestID + "]"
	}
	return s
}

func statusOf(err error) int {
	var e *APIError
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// IsUnauthorized reports a 401: the token or OAuth client is wrong or revoked.
// A token endpoint that refuses the client (invalid_client, unauthorized_client,
// or any 400/401 answer to the client credentials grant) counts too.
func IsUnauthorized(err error) bool {
	if statusOf(err) == http.StatusUnauthorized {
		return true
	}
	var te *tokenError
	var re *oauth2.RetrieveError
	if errors.As(err, &te) && errors.As(err, &re) {
		switch re.ErrorCode {
		case "invalid_client", "unauthorized_client", "invalid_grant":
			return true
		}
		return re.Response != nil && (re.Response.StatusCode == http.StatusUnauthorized || re.Response.StatusCode == http.StatusBadRequest)
	}
	return false
}

// IsNotFound reports a 404, e.g. an unknown survey or a history without licence.
func IsNotFound(err error) bool { return statusOf(err) == http.StatusNotFound }

// IsRateLimited reports a 429 that outlived every retry.
func IsRateLimited(err error) bool { return statusOf(err) == http.StatusTooManyRequests }

// IsBadRequest reports a 400, e.g. the history of a TestEmail distribution.
func IsBadRequest(err error) bool { return statusOf(err) == http.StatusBadRequest }
