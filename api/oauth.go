package api

import (
	"errors"
	"net/http"

	"golang.org/x/oauth2"
)

// isOAuthRejected reports whether the token endpoint refused the client
// (wrong id or secret, revoked client) rather than being unreachable.
func isOAuthRejected(err error) bool {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		s := re.Response.StatusCode
		return s >= 400 && s < 500 && s != http.StatusTooManyRequests
	}
	return false
}

func oauthReason(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			if re.ErrorDescription != "" {
				return re.ErrorCode + " (" + re.ErrorDescription + ")"
			}
			return re.ErrorCode
		}
		if re.Response != nil {
			return re.Response.Status
		}
	}
	return "the token request failed"
}
