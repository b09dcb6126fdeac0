package qualtrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// scripted answers the n-th request (0-based) with steps[n], and the last step
// for every request after that.
func scripted(t *testing.T, steps ...func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		steps[min(i, len(steps)-1)](w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func answer(status int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, status, body) }
}

var whoamiOK = answer(200, okEnvelope(`{"brandId":"acme","userId":"UR_1","accountType":"UT_BRANDADMIN","datacenter":"iad1"}`))

func errBody(status, code, msg string) string {
	return `{"meta":{"httpStatus":"` + status + `","requestId":"req-err","error":{"errorCode":"` + code + `","errorMessage":"` + msg + `"}}}`
}

func dropConnection(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		steps    []func(http.ResponseWriter, *http.Request)
		requests int
		check    func(t *testing.T, err error)
	}{
		{"a 500 is retried and the second answer wins", []func(http.ResponseWriter, *http.Request){answer(500, errBody("500 - Internal Server Error", "GEN_1", "oops")), whoamiOK}, 2, nil},
		{"a 504 is retried", []func(http.ResponseWriter, *http.Request){answer(504, "<html>gateway</html>"), whoamiOK}, 2, nil},
		{"a 429 without Retry-After is retried after a backoff", []func(http.ResponseWriter, *http.Request){answer(429, errBody("429 - Too Many Requests", "RL", "slow down")), whoamiOK}, 2, nil},
		{"a truncated JSON body on a 200 is retried", []func(http.ResponseWriter, *http.Request){answer(200, `{"result":{"brandId":"acme","us`), whoamiOK}, 2, nil},
		{"a dropped connection is retried", []func(http.ResponseWriter, *http.Request){dropConnection, dropConnection, whoamiOK}, 3, nil},
		{"a 401 is not retried", []func(http.ResponseWriter, *http.Request){answer(401, string(readTestdata(t, "error-unauthorized.json"))), whoamiOK}, 1, func(t *testing.T, err error) {
			var apiErr *APIError
			if !errors.As(err, &apiErr) || !IsUnauthorized(err) || apiErr.ErrorCode != "DCD_7" || apiErr.RequestID != "aaaaaaaa-1111-2222-3333-444444444444" || apiErr.ErrorMessage != "Unrecognized X-API-TOKEN." {
				t.Fatalf("want a 401 APIError with DCD_7, got %#v", err)
			}
		}},
		{"a 404 is not retried", []func(http.ResponseWriter, *http.Request){answer(404, errBody("404 - Not Found", "GED_3", "Distribution not found.")), whoamiOK}, 1, func(t *testing.T, err error) {
			if !IsNotFound(err) || IsUnauthorized(err) {
				t.Fatalf("want IsNotFound, got %v", err)
			}
		}},
		{"a 400 is not retried", []func(http.ResponseWriter, *http.Request){answer(400, errBody("400 - Bad Request", "CP_TD_GER_NP", "no history")), whoamiOK}, 1, func(t *testing.T, err error) {
			if !IsBadRequest(err) {
				t.Fatalf("want IsBadRequest, got %v", err)
			}
		}},
		{"a legacy error shape still yields code and message", []func(http.ResponseWriter, *http.Request){answer(403, string(readTestdata(t, "error-legacy.json")))}, 1, func(t *testing.T, err error) {
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 403 || apiErr.ErrorCode != "GS_5" || !strings.Contains(apiErr.ErrorMessage, "permission") {
				t.Fatalf("want a 403 GS_5 APIError, got %#v", err)
			}
		}},
		{"a redirect is never followed", []func(http.ResponseWriter, *http.Request){func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://evil.example/steal", http.StatusFound)
		}}, 1, func(t *testing.T, err error) {
			if statusOf(err) != http.StatusFound {
				t.Fatalf("want the 302 as an error, got %v", err)
			}
		}},
		{"persistent 500s give up after five attempts with the last error", []func(http.ResponseWriter, *http.Request){answer(500, errBody("500 - Internal Server Error", "GEN_1", "first")), answer(503, errBody("503 - Service Unavailable", "GEN_2", "last"))}, 5, func(t *testing.T, err error) {
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 || apiErr.ErrorCode != "GEN_2" {
				t.Fatalf("want the last 503, got %v", err)
			}
		}},
		// A 429 does not use up an attempt: the call waits out MaxThrottled
		// (default 30) of them in a row, then fails on the next one.
		{"persistent 429s end as rate limited", []func(http.ResponseWriter, *http.Request){answer(429, errBody("429 - Too Many Requests", "RL", "slow"))}, 31, func(t *testing.T, err error) {
			if !IsRateLimited(err) {
				t.Fatalf("want IsRateLimited, got %v", err)
			}
		}},
		{"a 429 leaves all five attempts to the 500s after it", []func(http.ResponseWriter, *http.Request){answer(429, errBody("429 - Too Many Requests", "RL", "slow")), answer(500, errBody("500 - Internal Server Error", "GEN_1", "boom"))}, 6, func(t *testing.T, err error) {
			if statusOf(err) != 500 {
				t.Fatalf("want the last 500, got %v", err)
			}
		}},
		{"a body of the wrong shape is not retried", []func(http.ResponseWriter, *http.Request){answer(200, `{"result":{"brandId":{"x":1}},"meta":{}}`), whoamiOK}, 1, func(t *testing.T, err error) {
			if err == nil || statusOf(err) != 0 {
				t.Fatalf("want a decode error, got %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, n := scripted(t, tt.steps...)
			c, rec := newTestClient(t, srv, nil)
			who, err := c.WhoAmI(ctxT(t))
			if got := int(n.Load()); got != tt.requests {
				t.Errorf("server saw %d requests, want %d", got, tt.requests)
			}
			events := rec.all()
			if len(events) != tt.requests {
				t.Fatalf("observed %d attempts, want %d", len(events), tt.requests)
			}
			for i, e := range events {
				last := i == len(events)-1
				if e.Attempt != i+1 || e.Retry == last || e.Endpoint != EndpointWhoAmI || e.Path != "/API/v3/whoami" || e.Method != "GET" {
					t.Errorf("event %d = %+v", i, e)
				}
			}
			if got := c.Stats()[EndpointWhoAmI]; got != tt.requests {
				t.Errorf("Stats counted %d whoami requests, want %d", got, tt.requests)
			}
			if tt.check == nil {
				if err != nil || who.BrandID != "acme" || who.AccountType != AccountTypeBrandAdmin {
					t.Fatalf("WhoAmI = %+v, %v", who, err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			tt.check(t, err)
			for _, e := range events {
				if e.Err != nil && strings.Contains(e.Err.Error(), testToken) {
					t.Fatalf("event error leaks the token: %v", e.Err)
				}
			}
			if strings.Contains(err.Error(), testToken) {
				t.Fatalf("error leaks the token: %v", err)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	t.Run("a 429 with Retry-After in seconds waits that long", func(t *testing.T) {
		t.Parallel()
		srv, n := scripted(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, 429, errBody("429 - Too Many Requests", "RL", "slow"))
		}, whoamiOK)
		c, _ := newTestClient(t, srv, nil)
		start := time.Now()
		if _, err := c.WhoAmI(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < 950*time.Millisecond {
			t.Fatalf("retried after %v, want about 1s", took)
		}
		if n.Load() != 2 {
			t.Fatalf("requests = %d, want 2", n.Load())
		}
	})
	t.Run("a huge Retry-After is capped", func(t *testing.T) {
		t.Parallel()
		srv, _ := scripted(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "3600")
			writeJSON(w, 503, "{}")
		}, whoamiOK)
		c, _ := newTestClient(t, srv, func(cfg *Config) { cfg.MaxRetryAfter = 20 * time.Millisecond })
		start := time.Now()
		if _, err := c.WhoAmI(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("waited %v despite the cap", took)
		}
	})
	t.Run("cancelling the context stops a Retry-After wait", func(t *testing.T) {
		t.Parallel()
		srv, _ := scripted(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "60")
			writeJSON(w, 429, "{}")
		})
		c, _ := newTestClient(t, srv, nil)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.WhoAmI(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
			t.Fatalf("err = %v after %v, want a prompt deadline error", err, time.Since(start))
		}
	})

	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	parse := []struct {
		name, header string
		want         time.Duration
		ok           bool
	}{
		{"delay seconds are read", "7", 7 * time.Second, true},
		{"an HTTP date is read relative to now", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"an HTTP date in the past means now", now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"an empty header means absent", "", 0, false},
		{"a negative number means absent", "-3", 0, false},
		{"garbage means absent", "soon", 0, false},
	}
	for _, tt := range parse {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := parseRetryAfter(tt.header, now)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.header, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestRequestBasics(t *testing.T) {
	t.Parallel()
	t.Run("the token goes in X-API-TOKEN and never into events", func(t *testing.T) {
		t.Parallel()
		srv, _ := scripted(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-API-TOKEN") != testToken || r.Header.Get("Authorization") != "" {
				writeJSON(w, 401, errBody("401 - Unauthorized", "DCD_7", "Unrecognized X-API-TOKEN."))
				return
			}
			whoamiOK(w, r)
		})
		c, rec := newTestClient(t, srv, nil)
		if _, err := c.WhoAmI(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		e := rec.all()[0]
		if e.Status != 200 || e.RequestID != "req-ok" || e.Duration <= 0 || e.Err != nil {
			t.Fatalf("event = %+v", e)
		}
	})
	t.Run("a proxied notice exposes the suggested host on the client and the event", func(t *testing.T) {
		t.Parallel()
		srv, _ := scripted(t, answer(200, `{"result":{"brandId":"acme"},"meta":{"httpStatus":"200 - OK","requestId":"r","notice":"Request proxied. For faster response times, use this host instead: sjc1.qualtrics.com"}}`))
		c, rec := newTestClient(t, srv, nil)
		if c.SuggestedHost() != "" {
			t.Fatal("suggested host before any call")
		}
		if _, err := c.WhoAmI(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if c.SuggestedHost() != "sjc1.qualtrics.com" || rec.all()[0].SuggestedHost != "sjc1.qualtrics.com" {
			t.Fatalf("SuggestedHost = %q, event %q", c.SuggestedHost(), rec.all()[0].SuggestedHost)
		}
	})
	t.Run("paths are escaped and events carry the path without the query", func(t *testing.T) {
		t.Parallel()
		var gotPath, gotQuery string
		srv, _ := scripted(t, func(w http.ResponseWriter, r *http.Request) {
			gotPath, gotQuery = r.URL.EscapedPath(), r.URL.RawQuery
			writeJSON(w, 200, okEnvelope(`{"elements":[],"nextPage":null}`))
		})
		c, rec := newTestClient(t, srv, nil)
		if _, err := collect(t, c.DistributionLinks(ctxT(t), "EMD_a/b", "SV_1")); err != nil {
			t.Fatal(err)
		}
		if gotPath != "/API/v3/distributions/EMD_a%2Fb/links" || gotQuery != "surveyId=SV_1" {
			t.Fatalf("path %q query %q", gotPath, gotQuery)
		}
		if e := rec.all()[0]; strings.Contains(e.Path, "?") || e.Endpoint != EndpointDistributionsLinks {
			t.Fatalf("event = %+v", e)
		}
	})
	t.Run("distribution filters are sent as query parameters", func(t *testing.T) {
		t.Parallel()
		var q string
		srv, _ := scripted(t, func(w http.ResponseWriter, r *http.Request) {
			q = r.URL.RawQuery
			writeJSON(w, 200, okEnvelope(`{"elements":[],"nextPage":null}`))
		})
		c, _ := newTestClient(t, srv, nil)
		_, err := collect(t, c.Distributions(ctxT(t), DistributionsQuery{
			SurveyID: "SV_1", SendStartDate: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
			SendEndDate: time.Date(2024, 2, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)), RequestType: RequestInvite,
		}))
		if err != nil {
			t.Fatal(err)
		}
		want := "distributionRequestType=Invite&sendEndDate=2024-01-31T23%3A00%3A00Z&sendStartDate=2024-01-02T03%3A04%3A05Z&surveyId=SV_1"
		if q != want {
			t.Fatalf("query %q, want %q", q, want)
		}
	})
	t.Run("distributions without a survey ID fail before any request", func(t *testing.T) {
		t.Parallel()
		srv, n := scripted(t, whoamiOK)
		c, _ := newTestClient(t, srv, nil)
		if _, err := collect(t, c.Distributions(ctxT(t), DistributionsQuery{})); err == nil || n.Load() != 0 {
			t.Fatalf("err = %v, requests = %d", err, n.Load())
		}
	})
	t.Run("stats count retries per endpoint and TakeStats resets them", func(t *testing.T) {
		t.Parallel()
		srv, _ := scripted(t, answer(500, "{}"), whoamiOK)
		c, _ := newTestClient(t, srv, nil)
		for range 2 {
			if _, err := c.WhoAmI(ctxT(t)); err != nil {
				t.Fatal(err)
			}
		}
		if got := c.TakeStats(); got[EndpointWhoAmI] != 3 || len(got) != 1 {
			t.Fatalf("TakeStats = %v, want 3 whoami", got)
		}
		if got := c.Stats(); len(got) != 0 {
			t.Fatalf("Stats after TakeStats = %v, want empty", got)
		}
	})
	t.Run("POST is not retried on a 500", func(t *testing.T) {
		t.Parallel()
		srv, n := scripted(t, answer(500, "{}"), answer(200, okEnvelope(`{"id":"SUB_1"}`)))
		c, _ := newTestClient(t, srv, nil)
		_, err := c.CreateEventSubscription(ctxT(t), NewEventSubscription{PublicationURL: "https://x.example/hook", Topics: "controlpanel.activateSurvey", SharedKey: "k"})
		if statusOf(err) != 500 || n.Load() != 1 {
			t.Fatalf("err = %v, requests = %d", err, n.Load())
		}
	})
	t.Run("the per-attempt timeout turns a hung server into a retry", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		srv, n := scripted(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}, whoamiOK)
		c, _ := newTestClient(t, srv, func(cfg *Config) { cfg.Timeout = 100 * time.Millisecond })
		if _, err := c.WhoAmI(ctxT(t)); err != nil || n.Load() != 2 {
			t.Fatalf("err = %v, requests = %d", err, n.Load())
		}
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"a config without credentials is refused", Config{BaseURL: "https://iad1.qualtrics.com"}},
		{"a config with both a token and OAuth is refused", Config{BaseURL: "https://iad1.qualtrics.com", Auth: Auth{Token: "t", OAuth: &OAuthConfig{ClientID: "a", ClientSecret: "b"}}}},
		{"an OAuth client without a secret is refused", Config{BaseURL: "https://iad1.qualtrics.com", Auth: Auth{OAuth: &OAuthConfig{ClientID: "a"}}}},
		{"a base URL off the policy is refused", Config{BaseURL: "https://evil.example", Auth: Auth{Token: "t"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := New(tt.cfg); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}
