package web

import (
	"net/url"
	"strings"

	"github.com/microapps/microapps/internal/links"
	"github.com/microapps/microapps/store"
)

// safeHTTPURL returns s normalised when it is an absolute http(s) URL with a
// host, and false otherwise (see links.SafeHTTP).
func safeHTTPURL(s string) (string, bool) { return links.SafeHTTP(s) }

// Deep-link template keys in integrations.deep_links.
const (
	linkResults             = links.Results
	linkReviewDistributions = links.ReviewDistributions
)

// deepLink fills the integration's template for key (or the default) with
// path-escaped ids; the one builder in internal/links is shared with emails,
// chat messages and the feed.
func deepLink(in store.AdminIntegration, key string, ids map[string]string) string {
	return links.Qualtrics(links.Integration{BaseURL: in.BaseURL, BrandBaseURL: in.BrandBaseURL, DeepLinks: in.DeepLinks}, key, ids)
}

// Internal page paths, built from escaped ids.
var (
	surveyDetailsPath    = links.SurveyDetails
	surveyResultsPath    = links.SurveyResults
	distributionDataPath = links.DistributionData
)

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
