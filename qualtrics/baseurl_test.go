package qualtrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestNormalizeBaseURL(t *testing.T) {
	t.Parallel()
	allowed := []string{"127.0.0.1", "sim.internal"}
	tests := []struct {
		name, raw, want string
	}{
		{"a datacenter host with the API path is kept", "https://iad1.qualtrics.com/API/v3/", "https://iad1.qualtrics.com/API/v3/"},
		{"a bare datacenter host gets the API path", "https://sjc1.qualtrics.com", "https://sjc1.qualtrics.com/API/v3/"},
		{"a root path gets the API path", "https://fra1.qualtrics.com/", "https://fra1.qualtrics.com/API/v3/"},
		{"the API path without a slash gets one", "https://fra1.qualtrics.com/API/v3", "https://fra1.qualtrics.com/API/v3/"},
		{"the API path in lower case is canonicalised", "https://fra1.qualtrics.com/api/V3/", "https://fra1.qualtrics.com/API/v3/"},
		{"an org subdomain is accepted", "https://acme.iad1.qualtrics.com/API/v3/", "https://acme.iad1.qualtrics.com/API/v3/"},
		{"upper case host and scheme are lowered", "HTTPS://IAD1.Qualtrics.COM", "https://iad1.qualtrics.com/API/v3/"},
		{"port 443 is dropped", "https://iad1.qualtrics.com:443/API/v3/", "https://iad1.qualtrics.com/API/v3/"},
		{"surrounding spaces are trimmed", "  https://iad1.qualtrics.com  ", "https://iad1.qualtrics.com/API/v3/"},
		{"an allowed IP over plain http keeps its port", "http://127.0.0.1:9090", "http://127.0.0.1:9090/API/v3/"},
		{"an allowed host name over https is accepted", "https://sim.internal:8443/API/v3", "https://sim.internal:8443/API/v3/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizeBaseURL(tt.raw, allowed)
			if err != nil || got != tt.want {
				t.Fatalf("NormalizeBaseURL(%q) = %q, %v; want %q", tt.raw, got, err, tt.want)
			}
		})
	}

	rejects := []struct{ name, raw string }{
		{"an empty string is refused", ""},
		{"a host without scheme is refused", "iad1.qualtrics.com/API/v3/"},
		{"plain http on qualtrics.com is refused", "http://iad1.qualtrics.com/API/v3/"},
		{"ftp is refused", "ftp://iad1.qualtrics.com/"},
		{"the bare qualtrics.com is refused", "https://qualtrics.com/API/v3/"},
		{"a look-alike with qualtrics.com as a prefix label is refused", "https://iad1.qualtrics.com.evil.example/API/v3/"},
		{"a look-alike glued to qualtrics.com is refused", "https://evilqualtrics.com/API/v3/"},
		{"user info hiding the real host is refused", "https://iad1.qualtrics.com@evil.example/API/v3/"},
		{"user info with a password is refused", "https://u:p@iad1.qualtrics.com/API/v3/"},
		{"a trailing dot is refused", "https://iad1.qualtrics.com./API/v3/"},
		{"an empty label is refused", "https://iad1..qualtrics.com/API/v3/"},
		{"an underscore label is refused", "https://iad_1.qualtrics.com/"},
		{"a percent-encoded host is refused", "https://iad1%2equaltrics.com/"},
		{"a backslash trick is refused", `https://evil.example\@iad1.qualtrics.com/`},
		{"an IPv4 literal not allowed is refused", "https://10.0.0.1/API/v3/"},
		{"an IPv6 literal is refused", "https://[::1]/API/v3/"},
		{"an IPv6 literal with a port is refused", "http://[::ffff:127.0.0.1]:9090/"},
		{"an integer IPv4 spelling is refused", "http://2130706433/"},
		{"a short IPv4 spelling is refused", "http://127.1/"},
		{"a query string is refused", "https://iad1.qualtrics.com/API/v3/?x=1"},
		{"an empty query string is refused", "https://iad1.qualtrics.com/API/v3/?"},
		{"a fragment is refused", "https://iad1.qualtrics.com/API/v3/#frag"},
		{"a fragment hiding the host is refused", "https://evil.example#@iad1.qualtrics.com/"},
		{"another path is refused", "https://iad1.qualtrics.com/API/v2/"},
		{"a path going up is refused", "https://iad1.qualtrics.com/API/v3/../../x"},
		{"an encoded slash in the path is refused", "https://iad1.qualtrics.com/API%2Fv3/"},
		{"a non-443 port on qualtrics.com is refused", "https://iad1.qualtrics.com:8443/API/v3/"},
		{"an empty port is refused", "https://iad1.qualtrics.com:/API/v3/"},
		{"an allowed host with a trailing dot is refused", "http://sim.internal./"},
		{"a suffix of an allowed host is refused", "http://evil.sim.internal/"},
		{"an opaque URL is refused", "https:iad1.qualtrics.com"},
		{"a control character is refused", "https://iad1.qualtrics.com/\x00"},
		{"a missing host is refused", "https:///API/v3/"},
	}
	for _, tt := range rejects {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizeBaseURL(tt.raw, allowed)
			if err == nil {
				t.Fatalf("NormalizeBaseURL(%q) = %q, want an error", tt.raw, got)
			}
			if !errors.Is(err, ErrInvalidBaseURL) {
				t.Fatalf("error %v does not match ErrInvalidBaseURL", err)
			}
			if msg := err.Error(); msg == "" || msg[len(msg)-1] != '.' || msg[0] < 'A' || msg[0] > 'Z' {
				t.Fatalf("error %q is not a sentence", msg)
			}
		})
	}
}

func TestCheckPageURL(t *testing.T) {
	t.Parallel()
	allowed := []string{"127.0.0.1"}
	tests := []struct {
		name, raw string
		ok        bool
	}{
		{"a proxied nextPage on another datacenter is followed", "https://az1.qualtrics.com/API/v3/distributions/EMD_x/links?surveyId=SV_x&proxyDepth=1&proxyInfo=%7B%22proxyDepth%22%3A1%7D&skipToken=MLRP_x", true},
		{"a nextPage on an allowed test host is followed", "http://127.0.0.1:1234/API/v3/surveys?offset=100", true},
		{"a nextPage off qualtrics.com is refused", "https://evil.example/API/v3/surveys?offset=100", false},
		{"a nextPage downgrading to http is refused", "http://az1.qualtrics.com/API/v3/surveys?offset=100", false},
		{"a nextPage outside the API path is refused", "https://az1.qualtrics.com/oauth2/token", false},
		{"a nextPage climbing out of the API path is refused", "https://az1.qualtrics.com/API/v3/../../admin", false},
		{"a relative nextPage is refused", "/API/v3/surveys?offset=100", false},
		{"a nextPage with user info is refused", "https://x@az1.qualtrics.com/API/v3/surveys", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := checkPageURL(tt.raw, allowed)
			if (err == nil) != tt.ok {
				t.Fatalf("checkPageURL(%q) error = %v, want ok=%v", tt.raw, err, tt.ok)
			}
		})
	}
}

// Issue 31 (info): the BrandBaseURL a survey definition names goes into the
// deep links of emails and pages; it passes the API base URL's host policy
// or is treated as absent.
func TestBrandBaseURLMustBeAQualtricsOrAllowedHost(t *testing.T) {
	t.Parallel()
	allowed := []string{"127.0.0.1", "sim.internal"}
	for raw, want := range map[string]string{
		"https://acme.qualtrics.com":                "https://acme.qualtrics.com",
		"https://Acme.EU.Qualtrics.com/":            "https://acme.eu.qualtrics.com",
		"https://conjoint.qualtrics.com/Q/Whatever": "https://conjoint.qualtrics.com",
		"acme.qualtrics.com":                        "https://acme.qualtrics.com",
		"http://127.0.0.1:9090":                     "http://127.0.0.1:9090",
		"http://sim.internal/":                      "http://sim.internal",
		"https://evil.example/sso":                  "",
		"https://qualtrics.com.evil.example":        "",
		"http://acme.qualtrics.com":                 "", // plain http off an allowed host
		"https://acme.qualtrics.com:8443":           "",
		"https://user@acme.qualtrics.com":           "",
		"https://10.0.0.1":                          "",
		"https://[::1]":                             "",
		"javascript:alert(1)":                       "",
		"https://qualtrics.com":                     "",
	} {
		got, err := BrandOrigin(raw, allowed)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("BrandOrigin(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
	// Through the client: SurveyMeta hands back only an acceptable origin.
	for brand, want := range map[string]string{"https://evil.example/sso": "", "https://acme.qualtrics.com": "https://acme.qualtrics.com"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, okEnvelope(`{"SurveyID":"SV_1","SurveyName":"S","BrandBaseURL":"`+brand+`"}`))
		}))
		c, _ := newTestClient(t, srv, nil)
		m, err := c.SurveyMeta(context.Background(), "SV_1")
		srv.Close()
		if err != nil || m.BrandBaseURL != want {
			t.Errorf("SurveyMeta with BrandBaseURL %q: %q, %v; want %q", brand, m.BrandBaseURL, err, want)
		}
	}
}
