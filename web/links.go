package web

import (
	"net/url"
	"strings"

	"github.com/microapps/microapps/store"
)

// safeHTTPURL returns s normalised when it is an absolute http(s) URL with a
// host, and false otherwise: javascript:, data: and relative URLs are never
// linked.
func safeHTTPURL(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsAny(s, "\x00\r\n\t") {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return "", false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	default:
		return "", false
	}
	u.Scheme = strings.ToLower(u.Scheme)
	return u.String(), true
}

// Deep-link template keys in integrations.deep_links.
const (
	linkResults             = "results"
	linkReviewDistributions = "reviewDistributions"
)

// defaultLinks follow QUALTRICS.md.
var defaultLinks = map[string]string{
	linkResults:             "{scheme}://{host}/responses/#/surveys/{surveyId}",
	linkReviewDistributions: "{scheme}://{host}/Q/MyProjectsSection",
}

// qualtricsOrigin is the scheme and host of the Qualtrics web UI for an
// integration: the brand's vanity host when known, else the API host.
func qualtricsOrigin(brandBaseURL, baseURL string) (scheme, host string) {
	for _, raw := range []string{brandBaseURL, baseURL} {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		if !strings.Contains(raw, "://") {
			raw = "https://" + raw
		}
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			sc := strings.ToLower(u.Scheme)
			if sc != "http" {
				sc = "https"
			}
			return sc, u.Host
		}
	}
	return "", ""
}

// deepLink fills the integration's template for key (or the default) with
// path-escaped ids, and returns "" unless the result is an http(s) URL.
func deepLink(in store.AdminIntegration, key string, ids map[string]string) string {
	tmpl := in.DeepLinks[key]
	if tmpl == "" {
		tmpl = defaultLinks[key]
	}
	scheme, host := qualtricsOrigin(in.BrandBaseURL, in.BaseURL)
	if host == "" {
		return ""
	}
	pairs := []string{"{scheme}", scheme, "{host}", host}
	for k, v := range ids {
		pairs = append(pairs, "{"+k+"}", url.PathEscape(v))
	}
	out, ok := safeHTTPURL(strings.NewReplacer(pairs...).Replace(tmpl))
	if !ok {
		return ""
	}
	return out
}

// Internal page paths, built from escaped ids.
func surveyDetailsPath(integrationID, distributionID string) string {
	return "/surveys/" + url.PathEscape(integrationID) + "/" + url.PathEscape(distributionID)
}

func surveyResultsPath(integrationID, surveyID string) string {
	return "/admin/surveys/" + url.PathEscape(integrationID) + "/" + url.PathEscape(surveyID)
}

func distributionDataPath(integrationID, distributionID string) string {
	return "/admin/distributions/" + url.PathEscape(integrationID) + "/" + url.PathEscape(distributionID)
}

// localPath accepts a redirect target only when it stays on this site: a
// path starting with a single "/", with no control character, DEL or
// backslash anywhere (browsers drop tabs and newlines and read "\" as "/",
// so "/\t/evil.example" is "//evil.example"), and that url.Parse reads with
// neither scheme nor host. Anything else goes to "/".
func localPath(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") {
		return "/"
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	if u, err := url.Parse(next); err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}
