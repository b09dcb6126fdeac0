package main

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/microapps/microapps/qualtrics/qualtricssim"
)

// TestEnablingEventsRegistersAtOnce runs the service and turns real-time
// events on and off through the admin API, as a new user would: the
// subscriptions appear in (simulated) Qualtrics within seconds and are gone as
// promptly, without any sync (the integrations are paused, so none runs).
func TestEnablingEventsRegistersAtOnce(t *testing.T) {
	t.Parallel()
	now := time.Now()
	brand := qualtricssim.Generate(11, qualtricssim.Spec{BrandID: "subbrand", Surveys: 2, Recipients: 10, Now: now})
	sim := qualtricssim.New(qualtricssim.Options{Brands: []*qualtricssim.Brand{brand}, Limits: &qualtricssim.Limits{Disabled: true}})
	simSrv := httptest.NewServer(sim)
	defer simSrv.Close()

	s := serveWithSim(t)
	ctx, c, out := s.ctx, s.admin, &s.out

	// subscriptions counts the brand's subscriptions that post to an integration.
	subscriptions := func(integrationID string) int {
		n := 0
		for _, s := range sim.Subscriptions(brand.ID) {
			if strings.HasSuffix(s.PublicationURL, "/hooks/qualtrics/"+integrationID) {
				n++
			}
		}
		return n
	}
	// within waits up to 10 s for want(subscriptions) and says how long it took.
	within := func(what, integrationID string, want func(int) bool) {
		t.Helper()
		start := time.Now()
		for !want(subscriptions(integrationID)) {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("%s: %d subscriptions after %v\n%s", what, subscriptions(integrationID), time.Since(start), out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("%s: %v", what, time.Since(start).Round(time.Millisecond))
	}
	create := func(events bool) string {
		t.Helper()
		var created struct {
			ID string `json:"id"`
		}
		if err := c.call(ctx, "POST", "/integrations", map[string]any{"name": "Events", "baseUrl": simSrv.URL + "/API/v3/",
			"token": brand.Users[0].Tokens[0], "status": "paused", "events": map[string]any{"enabled": events}}, &created); err != nil {
			t.Fatal(err)
		}
		return created.ID
	}
	patch := func(id string, events bool) {
		t.Helper()
		if err := c.call(ctx, "PATCH", "/integrations/"+id, map[string]any{"events": map[string]any{"enabled": events}}, nil); err != nil {
			t.Fatal(err)
		}
	}

	off := create(false)
	time.Sleep(300 * time.Millisecond)
	if n := subscriptions(off); n != 0 {
		t.Fatalf("an integration created with events off has %d subscriptions", n)
	}
	patch(off, true)
	within("PATCH events on: subscribed", off, func(n int) bool { return n > 0 })
	patch(off, false)
	within("PATCH events off: unsubscribed", off, func(n int) bool { return n == 0 })

	on := create(true)
	within("created with events on: subscribed", on, func(n int) bool { return n > 0 })

	// Quick toggles end in the last setting, without a duplicate: never
	// synced, the integration has only its brand-level subscription.
	for i := range 5 {
		patch(off, i%2 == 0)
	}
	within("toggled, ending on: subscribed", off, func(n int) bool { return n > 0 })
	time.Sleep(1500 * time.Millisecond) // every queued job has had its turn
	if n := subscriptions(off); n != 1 {
		t.Fatalf("%d subscriptions after toggling, want the one brand-level subscription", n)
	}
	patch(off, false)
	within("off again: unsubscribed", off, func(n int) bool { return n == 0 })
	time.Sleep(1500 * time.Millisecond)
	if n := subscriptions(off); n != 0 {
		t.Fatalf("%d subscriptions a while after turning events off", n)
	}

	if strings.Contains(out.String(), brand.Users[0].Tokens[0]) {
		t.Fatal("the service logged the token")
	}
	s.stop()
}
