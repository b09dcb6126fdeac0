package manage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/microapps/microapps"
	"github.com/microapps/microapps/qualtrics"
)

// verified is what /whoami said about a credential.
type verified struct {
	who      qualtrics.WhoAmI
	baseURL  string // switched to the advised datacenter when Qualtrics said so
	warnings []Warning
}

// verify checks a credential with GET /whoami. It never includes the secret in
// what it returns or logs.
func (s *Service) verify(ctx context.Context, baseURL string, cred credentialChange, timeout time.Duration) (verified, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.VerifyTimeout)
	defer cancel()
	if timeout <= 0 || timeout > s.o.VerifyTimeout {
		timeout = s.o.VerifyTimeout
	}
	client, err := qualtrics.New(qualtrics.Config{BaseURL: baseURL, AllowedHosts: s.o.AllowedHosts, Auth: cred.auth(),
		Timeout: timeout, MaxAttempts: 3, BackoffBase: 200 * time.Millisecond, BackoffMax: 2 * time.Second})
	if err != nil {
		return verified{}, invalid(microapps.FieldError{Field: "baseUrl", Message: strings.TrimPrefix(err.Error(), "qualtrics: ")})
	}
	who, err := client.WhoAmI(ctx)
	if err != nil {
		var apiErr *qualtrics.APIError
		if errors.As(err, &apiErr) && apiErr.StatusCode >= 400 && apiErr.StatusCode < 500 && apiErr.StatusCode != http.StatusTooManyRequests {
			detail := fmt.Sprintf("Qualtrics answered %d", apiErr.StatusCode)
			if apiErr.ErrorCode != "" {
				detail += " " + apiErr.ErrorCode
			}
			if apiErr.ErrorMessage != "" {
				detail += ": " + strings.TrimSuffix(apiErr.ErrorMessage, ".")
			}
			detail += ". Check the " + map[bool]string{true: "OAuth client", false: "API token"}[cred.method == microapps.AuthOAuth] + " and the datacenter in baseUrl."
			return verified{}, rejected(cred.field(), detail)
		}
		if isOAuthRejected(err) {
			return verified{}, rejected(cred.field(), "Qualtrics refused the OAuth client credentials: "+oauthReason(err)+".")
		}
		s.o.Log.Warn("manage: qualtrics unreachable during credential check", zap.String("baseUrl", baseURL), zap.Error(err))
		return verified{}, unreachable("baseUrl", fmt.Sprintf("GET /whoami on %s failed (%s). Try again later, or check baseUrl.", hostOf(baseURL), shortCause(err)))
	}
	v := verified{who: who, baseURL: baseURL}
	if who.AccountType != qualtrics.AccountTypeBrandAdmin {
		v.warnings = append(v.warnings, Warning{Field: cred.field(), Kind: WarnNotBrandAdmin, Message: fmt.Sprintf("This credential belongs to a %q account, not a Brand Admin (UT_BRANDADMIN): only surveys that user owns or that are shared with it will sync.", who.AccountType)})
	}
	if host := client.SuggestedHost(); host != "" {
		if switched, err := switchHost(baseURL, host, s.o.AllowedHosts); err == nil && switched != baseURL {
			v.baseURL = switched
			v.warnings = append(v.warnings, Warning{Field: "baseUrl", Kind: WarnHostSwitched, Message: fmt.Sprintf("Qualtrics proxied the request and advised %s; baseUrl was switched to %s.", host, switched)})
		}
	}
	return v, nil
}

func switchHost(baseURL, host string, allowed []string) (string, error) {
	i := strings.Index(baseURL, "://")
	if i < 0 {
		return "", errors.New("no scheme")
	}
	rest := baseURL[i+3:]
	j := strings.Index(rest, "/")
	if j < 0 {
		return "", errors.New("no path")
	}
	return qualtrics.NormalizeBaseURL(baseURL[:i+3]+host+rest[j:], allowed)
}

func hostOf(baseURL string) string {
	s := baseURL
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	if j := strings.Index(s, "/"); j >= 0 {
		s = s[:j]
	}
	return s
}

func shortCause(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case qualtrics.IsRateLimited(err):
		return "rate limited by Qualtrics"
	}
	var apiErr *qualtrics.APIError
	if errors.As(err, &apiErr) {
		return fmt.Sprintf("HTTP %d", apiErr.StatusCode)
	}
	return "network error"
}

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
