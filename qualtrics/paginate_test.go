package qualtrics

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pagedSurveys serves total surveys in pages of the given sizes (the last size
// repeats), in the given style: "offset" or "skipToken".
func pagedSurveys(t *testing.T, style string, total int, sizes ...int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pageNo := int(n.Add(1)) - 1
		start := 0
		switch style {
		case "offset":
			start, _ = strconv.Atoi(r.URL.Query().Get("offset"))
		case "skipToken":
			if tok := r.URL.Query().Get("skipToken"); tok != "" {
				start, _ = strconv.Atoi(strings.TrimPrefix(tok, "SV_"))
			}
		}
		size := sizes[min(pageNo, len(sizes)-1)]
		end := min(start+size, total)
		var els []string
		for i := start; i < end; i++ {
			els = append(els, fmt.Sprintf(`{"id":"SV_%d","name":"Survey %d","isActive":%v,"lastModified":"2024-01-01T00:00:00Z"}`, i, i, i%2 == 0))
		}
		next := "null"
		if end < total {
			switch style {
			case "offset":
				next = fmt.Sprintf(`"%s/API/v3/surveys?offset=%d"`, srv.URL, end)
			case "skipToken":
				next = fmt.Sprintf(`"%s/API/v3/surveys?skipToken=SV_%d&proxyInfo=%%7B%%7D"`, srv.URL, end)
			}
		}
		writeJSON(w, 200, okEnvelope(`{"elements":[`+strings.Join(els, ",")+`],"nextPage":`+next+`}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestPagination(t *testing.T) {
	t.Parallel()
	for _, style := range []string{"offset", "skipToken"} {
		t.Run("uneven pages in "+style+" style are walked in order", func(t *testing.T) {
			t.Parallel()
			srv, n := pagedSurveys(t, style, 250, 100, 77, 87)
			c, rec := newTestClient(t, srv, nil)
			pages, err := collect(t, c.Surveys(ctxT(t)))
			if err != nil {
				t.Fatal(err)
			}
			sizes := []int{}
			next := 0
			for _, p := range pages {
				sizes = append(sizes, len(p))
				for _, s := range p {
					if s.ID != fmt.Sprintf("SV_%d", next) || s.IsActive != (next%2 == 0) || s.LastModified.IsZero() {
						t.Fatalf("element %d = %+v", next, s)
					}
					next++
				}
			}
			if fmt.Sprint(sizes) != "[100 77 73]" || n.Load() != 3 {
				t.Fatalf("page sizes %v after %d requests, want [100 77 73] after 3", sizes, n.Load())
			}
			for _, e := range rec.all() {
				if e.Endpoint != EndpointSurveysList || e.Path != "/API/v3/surveys" {
					t.Fatalf("event = %+v", e)
				}
			}
		})
	}
	t.Run("the caller can stop after the first page", func(t *testing.T) {
		t.Parallel()
		srv, n := pagedSurveys(t, "offset", 500, 100)
		c, _ := newTestClient(t, srv, nil)
		for p, err := range c.Surveys(ctxT(t)) {
			if err != nil || len(p) != 100 {
				t.Fatalf("page of %d, err %v", len(p), err)
			}
			break
		}
		if n.Load() != 1 {
			t.Fatalf("server saw %d requests after an early stop, want 1", n.Load())
		}
	})
	t.Run("an empty list yields one empty page", func(t *testing.T) {
		t.Parallel()
		srv, _ := pagedSurveys(t, "offset", 0, 100)
		c, _ := newTestClient(t, srv, nil)
		pages, err := collect(t, c.Surveys(ctxT(t)))
		if err != nil || len(pages) != 1 || pages[0] == nil || len(pages[0]) != 0 {
			t.Fatalf("pages %v, err %v", pages, err)
		}
	})
	t.Run("a repeating nextPage is an error, not a loop", func(t *testing.T) {
		t.Parallel()
		var srv *httptest.Server
		var n atomic.Int32
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Pages 1 → A → B → A: the walk must stop when A comes back.
			next := map[int32]string{1: "A", 2: "B", 3: "A"}[n.Add(1)]
			writeJSON(w, 200, okEnvelope(`{"elements":[{"id":"SV_x"}],"nextPage":"`+srv.URL+`/API/v3/surveys?skipToken=`+next+`"}`))
		}))
		t.Cleanup(srv.Close)
		c, _ := newTestClient(t, srv, nil)
		pages, err := collect(t, c.Surveys(ctxT(t)))
		if !errors.Is(err, ErrPaginationLoop) {
			t.Fatalf("err = %v, want ErrPaginationLoop", err)
		}
		if len(pages) != 3 || n.Load() != 3 {
			t.Fatalf("%d pages after %d requests, want 3 and 3", len(pages), n.Load())
		}
	})
	t.Run("a nextPage off the policy is refused without a request", func(t *testing.T) {
		t.Parallel()
		srv, n := scripted(t, answer(200, okEnvelope(`{"elements":[{"id":"SV_1"}],"nextPage":"https://evil.example/API/v3/surveys?offset=1"}`)))
		c, _ := newTestClient(t, srv, nil)
		pages, err := collect(t, c.Surveys(ctxT(t)))
		if !errors.Is(err, ErrInvalidBaseURL) || len(pages) != 1 || n.Load() != 1 {
			t.Fatalf("err = %v, %d pages, %d requests", err, len(pages), n.Load())
		}
	})
	t.Run("a failing page after retries ends the walk with its error", func(t *testing.T) {
		t.Parallel()
		srv, _ := scripted(t, answer(200, okEnvelope(`{"elements":[{"id":"SV_1"}],"nextPage":"http://127.0.0.1:1/API/v3/surveys?offset=1"}`)))
		c, _ := newTestClient(t, srv, func(cfg *Config) { cfg.MaxAttempts = 2 })
		pages, err := collect(t, c.Surveys(ctxT(t)))
		if err == nil || len(pages) != 1 {
			t.Fatalf("err = %v, %d pages", err, len(pages))
		}
	})
}

func TestPaginationCancellation(t *testing.T) {
	t.Parallel()
	t.Run("cancelling between pages stops before the next request", func(t *testing.T) {
		t.Parallel()
		srv, n := pagedSurveys(t, "offset", 500, 100)
		c, _ := newTestClient(t, srv, nil)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var err error
		pages := 0
		for _, e := range c.Surveys(ctx) {
			if e != nil {
				err = e
				break
			}
			pages++
			cancel()
		}
		if !errors.Is(err, context.Canceled) || pages != 1 || n.Load() != 1 {
			t.Fatalf("err = %v, pages %d, requests %d", err, pages, n.Load())
		}
	})
	t.Run("cancelling while a page hangs returns promptly", func(t *testing.T) {
		t.Parallel()
		var srv *httptest.Server
		var n atomic.Int32
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				writeJSON(w, 200, okEnvelope(`{"elements":[{"id":"SV_1"}],"nextPage":"`+srv.URL+`/API/v3/surveys?offset=1"}`))
				return
			}
			<-r.Context().Done()
		}))
		t.Cleanup(srv.Close)
		c, _ := newTestClient(t, srv, nil)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		start := time.Now()
		pages, err := collect(t, func(yield func([]Survey, error) bool) {
			for p, err := range c.Surveys(ctx) {
				if err == nil {
					time.AfterFunc(50*time.Millisecond, cancel)
				}
				if !yield(p, err) {
					return
				}
			}
		})
		if !errors.Is(err, context.Canceled) || len(pages) != 1 || time.Since(start) > 2*time.Second {
			t.Fatalf("err = %v, %d pages after %v", err, len(pages), time.Since(start))
		}
	})
}

// hostRouter serves several fake hosts from one TLS server: every dial goes to
// it, and handlers are picked by the Host header. It lets tests use the real
// https://co1.qualtrics.com URLs, nextPage links included, verbatim.
func hostRouter(t *testing.T, hosts map[string]http.HandlerFunc) http.RoundTripper {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, ok := hosts[r.Host]
		if !ok {
			http.Error(w, "unknown host "+r.Host, http.StatusMisdirectedRequest)
			return
		}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	return &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}
}

func TestProxiedRecordedPages(t *testing.T) {
	t.Parallel()
	fx := sharedFixtures(t)
	var mu sync.Mutex
	var seen []string
	serve := func(host string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, host+" "+r.URL.Query().Get("skipToken"))
			mu.Unlock()
			if r.Header.Get("X-API-TOKEN") != testToken || r.URL.Query().Get("surveyId") != "SV_eVtvUQALTlL8Uzr" {
				writeJSON(w, 400, errBody("400 - Bad Request", "X", "bad request"))
				return
			}
			switch r.URL.Query().Get("skipToken") {
			case "":
				writeJSON(w, 200, string(readShared(t, fx, "distribution-links-proxied-page-1.json")))
			case "MLRP_2trBWUssJTdtDF3":
				writeJSON(w, 200, string(readShared(t, fx, "distribution-links-proxied-page-2.json")))
			case "MLRP_5w3V5GuMGzOzERT":
				writeJSON(w, 200, string(readShared(t, fx, "distribution-links-proxied-page-3.json")))
			default:
				// The recording stopped at page 3; end the walk here.
				writeJSON(w, 200, okEnvelope(`{"elements":[],"nextPage":null}`))
			}
		}
	}
	rt := hostRouter(t, map[string]http.HandlerFunc{"co1.qualtrics.com": serve("co1"), "az1.qualtrics.com": serve("az1")})
	rec := &recorder{}
	c, err := New(Config{BaseURL: "https://co1.qualtrics.com/API/v3/", Auth: Auth{Token: testToken}, Transport: rt, Observe: rec.observe, BackoffBase: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pages, err := collect(t, c.DistributionLinks(ctxT(t), "EMD_9A7FZioL5pgWZJb", "SV_eVtvUQALTlL8Uzr"))
	if err != nil {
		t.Fatal(err)
	}
	want := "[co1  az1 MLRP_2trBWUssJTdtDF3 az1 MLRP_5w3V5GuMGzOzERT az1 MLRP_eFj7doaY91VAVi5]"
	if fmt.Sprint(seen) != want {
		t.Fatalf("walked %v\nwant   %v", seen, want)
	}
	if len(pages) != 4 || len(pages[0]) != 100 || len(pages[2]) != 100 || len(pages[3]) != 0 {
		t.Fatalf("page sizes wrong: %d pages", len(pages))
	}
	first := pages[0][0]
	if first.ContactID != "MLRP_3eXXOwwpdF6jw7X" || first.Email != "foo.bario@emailtest.com" || first.Unsubscribed ||
		first.ExternalDataReference != "29" || !first.LinkExpiration.Equal(time.Date(2019, 8, 23, 1, 48, 4, 0, time.UTC)) {
		t.Fatalf("first link = %+v", first)
	}
	// Pages 1 and 2 hold the same contacts as recorded: the client hands them
	// over as they come and leaves idempotence to the store.
	if pages[1][0].ContactID != first.ContactID {
		t.Fatalf("page 2 starts with %s", pages[1][0].ContactID)
	}
	if c.SuggestedHost() != "az1.qualtrics.com" {
		t.Fatalf("SuggestedHost = %q", c.SuggestedHost())
	}
	events := rec.all()
	if events[0].Host != "co1.qualtrics.com" || events[1].Host != "az1.qualtrics.com" || events[0].SuggestedHost != "az1.qualtrics.com" || events[2].SuggestedHost != "" {
		t.Fatalf("events = %+v", events)
	}
}
