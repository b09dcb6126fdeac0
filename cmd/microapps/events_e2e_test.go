package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/microapps/microapps/qualtrics/qualtricssim"
	"github.com/microapps/microapps/store/storetest"
)

// TestFinishedSurveyLeavesTheListWithinSeconds runs the whole service with
// real-time events on: a recipient finishes in (simulated) Qualtrics and the
// survey leaves their My active surveys without any sync.
func TestFinishedSurveyLeavesTheListWithinSeconds(t *testing.T) {
	t.Parallel()
	now := time.Now()
	brand := qualtricssim.Generate(7, qualtricssim.Spec{BrandID: "evbrand", Surveys: 3, Recipients: 60, Now: now})
	sim := qualtricssim.New(qualtricssim.Options{Brands: []*qualtricssim.Brand{brand}, Limits: &qualtricssim.Limits{Disabled: true}})
	simSrv := httptest.NewServer(sim)
	defer simSrv.Close()

	sv, err := sim.AddSurvey(brand.ID, qualtricssim.Survey{Name: "Real-time check", IsActive: true, CreationDate: now,
		LastModifiedDate: now, StartDate: now, EndDate: now.Add(72 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	dist, err := sim.AddDistribution(qualtricssim.Distribution{SurveyID: sv.ID, LinkExpiration: now.Add(48 * time.Hour),
		Recipients: []qualtricssim.Recipient{{Email: "erin@example.com", FirstName: "Erin", Status: "Success", SentAt: now}}})
	if err != nil {
		t.Fatal(err)
	}

	s := serveWithSim(t)
	ctx, base, c, out := s.ctx, s.base, s.admin, &s.out
	var created struct {
		ID string `json:"id"`
	}
	if err := c.call(ctx, "POST", "/integrations", map[string]any{"name": "Events", "baseUrl": simSrv.URL + "/API/v3/",
		"token": brand.Users[0].Tokens[0], "events": map[string]any{"enabled": true}}, &created); err != nil {
		t.Fatal(err)
	}
	if _, err := c.waitSync(ctx, created.ID, "full", func(string) {}); err != nil {
		t.Fatalf("first sync: %v\n%s", err, out.String())
	}
	if subs := sim.Subscriptions(brand.ID); len(subs) == 0 {
		t.Fatalf("no event subscription registered in Qualtrics after the sync")
	}
	mine := func() []string {
		req, _ := http.NewRequest("GET", base+"/api/v1/me/surveys", nil)
		req.Header.Set("X-Forwarded-Email", "Erin@Example.com")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Items []struct {
				SurveyID string `json:"surveyId"`
			} `json:"items"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, it := range body.Items {
			ids = append(ids, it.SurveyID)
		}
		return ids
	}
	if got := mine(); fmt.Sprint(got) != fmt.Sprint([]string{sv.ID}) {
		t.Fatalf("before finishing, erin's surveys = %v, want [%s]", got, sv.ID)
	}

	contact := sim.Recipients(dist.ID)[0].ContactID
	start := time.Now()
	delivery, err := sim.SetRecipientStatus(dist.ID, contact, "SurveyFinished", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range delivery.Wait() {
		if res.Err != nil || res.StatusCode >= 300 {
			t.Fatalf("the event callback failed: %d %v", res.StatusCode, res.Err)
		}
	}
	for len(mine()) != 0 {
		if time.Since(start) > 2*time.Second {
			t.Fatalf("the finished survey is still listed %v after the event", time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the survey left erin's list %v after she finished it", time.Since(start).Round(time.Millisecond))
	if strings.Contains(out.String(), brand.Users[0].Tokens[0]) {
		t.Fatal("the service logged the token")
	}
	s.stop()
}

// served is `microapps serve` running for a test, with real-time events
// reachable on loopback and workers, and an admin API client.
type served struct {
	ctx   context.Context
	base  string
	admin *demoClient
	out   syncBuffer
	done  chan error
	stop  func()
}

// serveWithSim starts `microapps serve` on a fresh database; Qualtrics may be
// a simulator on loopback. stop shuts it down and fails the test on error.
func serveWithSim(t *testing.T) *served {
	t.Helper()
	addr := freeAddr(t)
	token := "e2e-admin-token-0123456789abcdef"
	env := envOf(map[string]string{
		"MICROAPPS_DATABASE_URL":            storetest.NewMigrated(t),
		"MICROAPPS_ENCRYPTION_KEYS":         goodKey,
		"MICROAPPS_AUTH_MODE":               "header",
		"MICROAPPS_HTTP_ADDR":               addr,
		"MICROAPPS_PUBLIC_URL":              "http://" + addr,
		"MICROAPPS_ADMIN_TOKENS":            token,
		"MICROAPPS_QUALTRICS_ALLOWED_HOSTS": "127.0.0.1",
		"MICROAPPS_WORKERS":                 "2",
	})
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{ctx: ctx, base: "http://" + addr, done: make(chan error, 1)}
	go func() { s.done <- run(ctx, []string{"serve"}, env, &s.out) }()
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-s.done; err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if !stopped {
			stopped = true
			cancel()
			<-s.done
		}
	})
	waitReady(t, s.base, s.done, &s.out)
	s.admin = &demoClient{base: s.base + "/api/v1", token: token, http: &http.Client{Timeout: 30 * time.Second}}
	return s
}

func waitReady(t *testing.T, base string, done <-chan error, out *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited early: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
