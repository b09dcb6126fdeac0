package qualtrics

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// ErrInvalidBaseURL is matched (errors.Is) by every error of NormalizeBaseURL and
// by a nextPage link that leaves the policy. The error text itself is a sentence
// meant for a field error shown to a platform admin.
var ErrInvalidBaseURL = errors.New("invalid base URL")

type baseURLError struct{ msg string }

func (e *baseURLError) Error() string        { return e.msg }
func (e *baseURLError) Is(target error) bool { return target == ErrInvalidBaseURL }

func invalid(msg string) error { return &baseURLError{msg: msg} }

const apiPath = "/API/v3/"

// NormalizeBaseURL checks a base URL against the SSRF policy and returns its
// canonical form "scheme://host[:port]/API/v3/".
//
// Accepted: https on a proper subdomain of qualtrics.com (iad1.qualtrics.com,
// org.iad1.qualtrics.com; the bare qualtrics.com is refused because the API is
// never served there), port 443 or none; or a host name listed in allowedHosts
// exactly (any port, http or https) — the only way to reach an IPv4 literal such
// as a local simulator. IPv6 literals are always refused: nothing legitimate
// needs them and their many spellings make look-alikes easy. User information,
// queries, fragments, trailing dots and paths other than "", "/" and "/API/v3[/]"
// (any case) are refused.
func NormalizeBaseURL(raw string, allowedHosts []string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", invalid("Base URL is required.")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", invalid("Base URL is not a valid URL.")
	}
	if u.Scheme == "" || u.Opaque != "" || (u.Host == "" && !strings.HasPrefix(raw[len(u.Scheme)+1:], "//")) {
		return "", invalid("Base URL must be an absolute URL such as https://iad1.qualtrics.com/API/v3/.")
	}
	host, err := checkHost(u, allowedHosts)
	if err != nil {
		return "", err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return "", invalid("Base URL must not contain a query string.")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "", invalid("Base URL must not contain a fragment.")
	}
	if u.RawPath != "" {
		return "", invalid("Base URL path must be /API/v3/.")
	}
	switch {
	case u.Path == "", u.Path == "/", strings.EqualFold(u.Path, "/API/v3"), strings.EqualFold(u.Path, "/API/v3/"):
	default:
		return "", invalid("Base URL path must be /API/v3/.")
	}
	return strings.ToLower(u.Scheme) + "://" + host + apiPath, nil
}

// checkHost applies the host part of the policy to any URL the client is about
// to call (base URL or nextPage link) and returns the canonical host[:port].
func checkHost(u *url.URL, allowedHosts []string) (string, error) {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", invalid("Base URL must use https.")
	}
	if u.User != nil || strings.Contains(u.Host, "@") {
		return "", invalid("Base URL must not contain a user name or password.")
	}
	if u.Host == "" {
		return "", invalid("Base URL must name a host.")
	}
	if strings.HasPrefix(u.Host, "[") {
		return "", invalid("Base URL must not use an IPv6 address.")
	}
	name := strings.ToLower(u.Hostname())
	port := u.Port()
	if strings.HasSuffix(u.Host, ":") {
		return "", invalid("Base URL has an empty port.")
	}
	if name == "" {
		return "", invalid("Base URL must name a host.")
	}
	if strings.HasSuffix(name, ".") {
		return "", invalid("Base URL host must not end with a dot.")
	}
	for _, a := range allowedHosts {
		if a = strings.ToLower(strings.TrimSpace(a)); a != "" && a == name {
			return joinHostPort(name, port), nil
		}
	}
	if net.ParseIP(name) != nil {
		return "", invalid("Base URL must not use an IP address unless that address is an allowed host.")
	}
	if !validHostName(name) {
		return "", invalid("Base URL host is not a valid host name.")
	}
	if !strings.HasSuffix(name, ".qualtrics.com") {
		return "", invalid("Base URL host must be a qualtrics.com datacenter such as iad1.qualtrics.com.")
	}
	if scheme != "https" {
		return "", invalid("Base URL must use https.")
	}
	if port != "" && port != "443" {
		return "", invalid("Base URL must not name a port other than 443 on qualtrics.com.")
	}
	return name, nil
}

func joinHostPort(name, port string) string {
	if port == "" {
		return name
	}
	return name + ":" + port
}

// validHostName is strict on purpose: percent-escapes, underscores, backslashes
// and empty labels are how look-alike hosts slip past suffix checks.
func validHostName(name string) bool {
	if len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// checkPageURL validates a nextPage link: same host policy as the base URL, and
// it must stay under /API/v3/ so a hostile page cannot steer the token elsewhere
// on an allowed host.
func checkPageURL(raw string, allowedHosts []string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" {
		return nil, invalid("nextPage is not an absolute URL.")
	}
	if _, err := checkHost(u, allowedHosts); err != nil {
		return nil, err
	}
	if u.Fragment != "" || !strings.HasPrefix(strings.ToUpper(u.Path), "/API/V3/") || strings.Contains(u.Path, "/../") {
		return nil, invalid("nextPage must point under /API/v3/.")
	}
	return u, nil
}

// BrandOrigin checks the BrandBaseURL a survey definition names (the
// brand's web host, which deep links in emails and pages point at) against
// the same host policy as the API base URL: https on a qualtrics.com
// subdomain, port 443 or none, or a host of allowedHosts (any port, http
// allowed). It returns the canonical origin "scheme://host[:port]"; a path
// is dropped, since deep links use the origin only. Anything else (another
// domain, an IP address, user information) is refused: a brand's survey
// data must not be able to send the product's links elsewhere.
func BrandOrigin(raw string, allowedHosts []string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", invalid("BrandBaseURL is empty.")
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw // Qualtrics has sent the bare host
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Host == "" {
		return "", invalid("BrandBaseURL is not an absolute URL.")
	}
	host, err := checkHost(u, allowedHosts)
	if err != nil {
		return "", err
	}
	return strings.ToLower(u.Scheme) + "://" + host, nil
}
