// Package links builds every link the service hands out: the deep links into
// the Qualtrics web UI (filled from an integration's templates) and the paths
// of its own pages. Pages, emails, chat messages and the feed all use it, so a
// "Review distributions" button goes to the same place wherever it is shown.
package links

import (
	"net/url"
	"strings"
)

// SafeHTTP returns s normalised when it is an absolute http(s) URL with a
// host and no user info, and false otherwise: javascript:, data: and relative
// URLs are never linked.
func SafeHTTP(s string) (string, bool) {
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
	Results             = "results"
	ReviewDistributions = "reviewDistributions"
)

// defaults follow QUALTRICS.md.
var defaults = map[string]string{
	Results:             "{scheme}://{host}/responses/#/surveys/{surveyId}",
	ReviewDistributions: "{scheme}://{host}/Q/MyProjectsSection",
}

// Integration is what a deep link needs to know of an integration.
type Integration struct {
	BaseURL      string            // the API base URL
	BrandBaseURL string            // the brand's vanity host, when known
	DeepLinks    map[string]string // per-integration templates by key
}

// QualtricsOrigin is the scheme and host of the Qualtrics web UI for an
// integration: the brand's vanity host when known, else the API host.
func QualtricsOrigin(brandBaseURL, baseURL string) (scheme, host string) {
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

// Qualtrics fills the integration's template for key (or the default) with
// path-escaped ids ({surveyId}, {distributionId}) and returns "" unless the
// result is an http(s) URL.
func Qualtrics(in Integration, key string, ids map[string]string) string {
	tmpl := in.DeepLinks[key]
	if tmpl == "" {
		tmpl = defaults[key]
	}
	scheme, host := QualtricsOrigin(in.BrandBaseURL, in.BaseURL)
	if host == "" {
		return ""
	}
	pairs := []string{"{scheme}", scheme, "{host}", host}
	for k, v := range ids {
		pairs = append(pairs, "{"+k+"}", url.PathEscape(v))
	}
	out, ok := SafeHTTP(strings.NewReplacer(pairs...).Replace(tmpl))
	if !ok {
		return ""
	}
	return out
}

// ReviewDistributionsURL is the "Review distributions" button of a
// distribution.
func ReviewDistributionsURL(in Integration, surveyID, distributionID string) string {
	return Qualtrics(in, ReviewDistributions, map[string]string{"surveyId": surveyID, "distributionId": distributionID})
}

// Paths of this service's own pages, built from escaped ids.

// SurveyDetails is a recipient's Survey details page.
func SurveyDetails(integrationID, distributionID string) string {
	return "/surveys/" + url.PathEscape(integrationID) + "/" + url.PathEscape(distributionID)
}

// SurveyResults is a Brand Admin's Survey results page.
func SurveyResults(integrationID, surveyID string) string {
	return "/admin/surveys/" + url.PathEscape(integrationID) + "/" + url.PathEscape(surveyID)
}

// DistributionData is a Brand Admin's Distribution data page.
func DistributionData(integrationID, distributionID string) string {
	return "/admin/distributions/" + url.PathEscape(integrationID) + "/" + url.PathEscape(distributionID)
}

// Feed is the notification feed.
const Feed = "/notifications"

// EmailSettings is the page where a signed-in user turns email off or on.
const EmailSettings = "/settings/notifications"

// Unsubscribe is the one-click unsubscribe address of a user's token
// (RFC 8058): GET shows a confirmation, POST unsubscribes.
func Unsubscribe(token string) string { return "/unsubscribe/" + url.PathEscape(token) }

// Absolute joins a page path (with its query, if any) to the service's
// public URL.
func Absolute(public *url.URL, path string) string {
	if public == nil || public.Host == "" {
		return path
	}
	return strings.TrimSuffix(public.Scheme+"://"+public.Host+public.EscapedPath(), "/") + path
}
