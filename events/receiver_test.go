package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/microapps/microapps/events"
	"github.com/microapps/microapps/qualtrics/qualtricssim"
)

const completed = "surveyengine.completedResponse."

func TestCallbacksThatMustChangeNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	e := newEnv(t, envOptions{})
	a := e.addIntegration(simBrand("branda", "SV_a", "EMD_a", now), true)
	b := e.addIntegration(simBrand("brandb", "SV_b", "EMD_b", now), true)
	off := e.addIntegration(simBrand("brandoff", "SV_off", "EMD_off", now), false)
	keyA, keyB, keyOff := e.sharedKey(a), e.sharedKey(b), e.sharedKey(off)
	_ = keyB

	for _, tc := range []struct {
		name   string
		post   func() response
		status int
	}{
		{"a forged HMAC is refused with 401", func() response {
			return e.post(a.ID, completed+"SV_a", msg("SV_a", "R_forged", "CID_branda1", "EMD_a", "branda", "Complete", now), "",
				qualtricssim.SignEvent("not the key", []byte(`{}`)))
		}, http.StatusUnauthorized},
		{"an HMAC that is not hex is refused with 401", func() response {
			return e.post(a.ID, completed+"SV_a", msg("SV_a", "R_nothex", "CID_branda1", "EMD_a", "branda", "Complete", now), "", "zz")
		}, http.StatusUnauthorized},
		{"a signature with another integration's key is refused with 401", func() response {
			return e.post(a.ID, completed+"SV_a", msg("SV_a", "R_keyb", "CID_branda1", "EMD_a", "branda", "Complete", now), keyB, "")
		}, http.StatusUnauthorized},
		{"an unknown integration is refused with 401", func() response {
			return e.post(uuid.NewString(), completed+"SV_a", msg("SV_a", "R_unknown", "CID_branda1", "EMD_a", "branda", "Complete", now), keyA, "")
		}, http.StatusUnauthorized},
		{"a path that is no integration id is refused with 401", func() response {
			return e.post("not-an-id", completed+"SV_a", msg("SV_a", "R_path", "CID_branda1", "EMD_a", "branda", "Complete", now), keyA, "")
		}, http.StatusUnauthorized},
		{"an integration with events disabled is refused with 401", func() response {
			return e.post(off.ID, completed+"SV_off", msg("SV_off", "R_off", "CID_brandoff1", "EMD_off", "brandoff", "Complete", now), keyOff, "")
		}, http.StatusUnauthorized},
		{"a body over 64 KiB is refused with 413", func() response {
			m := msg("SV_a", "R_big", "CID_branda1", "EMD_a", "branda", "Complete", now)
			m["Padding"] = strings.Repeat("x", 70<<10)
			return e.post(a.ID, completed+"SV_a", m, keyA, "")
		}, http.StatusRequestEntityTooLarge},
		{"a body that is not a form is refused with 415", func() response {
			return e.postRaw(a.ID, "application/json", `{"Topic":"x"}`)
		}, http.StatusUnsupportedMediaType},
		{"an event naming another brand is acknowledged and ignored", func() response {
			return e.post(a.ID, completed+"SV_b", msg("SV_b", "R_cross", "CID_brandb1", "EMD_b", "brandb", "Complete", now), keyA, "")
		}, http.StatusOK},
		{"an event for another integration's survey with no brand is kept pending", func() response {
			return e.post(a.ID, completed+"SV_b", msg("SV_b", "R_cross2", "CID_brandb1", "EMD_b", "", "Complete", now), keyA, "")
		}, http.StatusAccepted},
		{"an unknown status is acknowledged and ignored", func() response {
			return e.post(a.ID, completed+"SV_a", msg("SV_a", "R_bogus", "CID_branda1", "EMD_a", "branda", "Bogus", now), keyA, "")
		}, http.StatusOK},
		{"an unknown topic is acknowledged and ignored", func() response {
			return e.post(a.ID, "surveyengine.somethingElse.SV_a", msg("SV_a", "R_topic", "CID_branda1", "EMD_a", "branda", "Complete", now), keyA, "")
		}, http.StatusOK},
		{"a topic naming another survey than MSG is acknowledged and ignored", func() response {
			return e.post(a.ID, completed+"SV_x", msg("SV_a", "R_mismatch", "CID_branda1", "EMD_a", "branda", "Complete", now), keyA, "")
		}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.post()
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if r.status >= 400 {
				var p map[string]any
				if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("Content-Type %q, want application/problem+json", ct)
				}
				if err := json.Unmarshal([]byte(r.body), &p); err != nil || p["status"] != float64(tc.status) || p["title"] == "" {
					t.Errorf("problem body %s (%v)", r.body, err)
				}
			}
		})
	}

	for _, in := range []integration{a, b} {
		applied, err := e.svc.ReapplyPending(ctx, in.ID, time.Now())
		if err != nil || applied != 0 {
			t.Fatalf("reapply: %d applied (%v), want 0", applied, err)
		}
	}
	if n := e.count(`SELECT count(*) FROM qualtrics_events`); n != 1 {
		t.Errorf("%d events stored, want only the pending cross-integration one", n)
	}
	if n := e.count(`SELECT count(*) FROM recipients WHERE status <> 'Success' OR response_id <> ''`); n != 0 {
		t.Errorf("%d recipients changed, want none", n)
	}
	if n := e.count(`SELECT count(*) FROM distributions WHERE started <> 0 OR finished <> 0`); n != 0 {
		t.Errorf("%d distributions' counters changed, want none", n)
	}
	// Rejections are logged without the body.
	if n := e.logs.FilterMessage("event callback rejected").Len(); n != 6 {
		t.Errorf("%d rejections logged, want 6", n)
	}
}

func TestCallbacksMoveRecipientsForwardOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	e := newEnv(t, envOptions{})
	a := e.addIntegration(simBrand("brandf", "SV_f", "EMD_f", now), true)
	key := e.sharedKey(a)
	post := func(topic, responseID, recipient, status string) response {
		return e.post(a.ID, topic+"SV_f", msg("SV_f", responseID, recipient, "EMD_f", "brandf", status, now), key, "")
	}
	const (
		started = "surveyengine.startedRecipientSession."
		partial = "surveyengine.partialResponse."
	)

	for _, tc := range []struct {
		name                  string
		post                  func() response
		status                int
		applied               int
		contact               string
		want                  string
		wantStarted, wantDone int // distribution counters after the step: events leave Qualtrics' figures alone
	}{
		{"a completed response finishes the recipient", func() response { return post(completed, "R_1", "CID_brandf1", "Complete") },
			http.StatusAccepted, 1, "CID_brandf1", "SurveyFinished", 0, 0},
		{"the same callback replayed is stored once and applied once", func() response { return post(completed, "R_1", "CID_brandf1", "Complete") },
			http.StatusOK, 0, "CID_brandf1", "SurveyFinished", 0, 0},
		{"status Full is accepted", func() response { return post(completed, "R_2", "CID_brandf2", "Full") },
			http.StatusAccepted, 1, "CID_brandf2", "SurveyFinished", 0, 0},
		{"a late session start never moves a finished recipient back", func() response { return post(started, "", "CID_brandf2", "Complete") },
			http.StatusAccepted, 1, "CID_brandf2", "SurveyFinished", 0, 0},
		{"a session start without a response id starts the recipient", func() response { return post(started, "", "CID_brandf3", "Complete") },
			http.StatusAccepted, 1, "CID_brandf3", "SurveyStarted", 0, 0},
		{"a partial response moves a started recipient forward", func() response { return post(partial, "R_3", "CID_brandf3", "Complete") },
			http.StatusAccepted, 1, "CID_brandf3", "SurveyPartiallyFinished", 0, 0},
		{"the recipient is found by the contact lookup id too", func() response { return post(completed, "R_4", "MLRP_brandf4", "Complete") },
			http.StatusAccepted, 1, "CID_brandf4", "SurveyFinished", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.post()
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			applied, err := e.svc.ReapplyPending(ctx, a.ID, time.Now())
			if err != nil || applied != tc.applied {
				t.Fatalf("reapply: %d applied (%v), want %d", applied, err, tc.applied)
			}
			if got := e.recipient(a.ID, "EMD_f", tc.contact); got.Status != tc.want {
				t.Errorf("recipient %s is %s, want %s", tc.contact, got.Status, tc.want)
			}
			if s, f := e.counters(a.ID, "EMD_f"); s != tc.wantStarted || f != tc.wantDone {
				t.Errorf("started/finished = %d/%d, want %d/%d", s, f, tc.wantStarted, tc.wantDone)
			}
		})
	}
	if n := e.count(`SELECT count(*) FROM qualtrics_events WHERE response_id = 'R_1'`); n != 1 {
		t.Errorf("%d rows for the replayed event, want 1", n)
	}
	if got := e.recipient(a.ID, "EMD_f", "CID_brandf1"); got.ResponseID != "R_1" || got.CompletedAt == nil || !got.CompletedAt.Equal(now) {
		t.Errorf("finished recipient = %+v, want response R_1 completed at %v", got, now)
	}
	if got := e.recipient(a.ID, "EMD_f", "CID_brandf3"); got.ResponseID != "R_3" || got.CompletedAt != nil || got.StartedAt == nil {
		t.Errorf("partial recipient = %+v, want response R_3, started, not completed", got)
	}
	if n := e.count(`SELECT count(*) FROM qualtrics_events WHERE applied_at IS NULL`); n != 0 {
		t.Errorf("%d events still pending", n)
	}
}

func TestPendingEventsWaitForTheirRecipient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	e := newEnv(t, envOptions{river: true})
	a := e.addIntegration(simBrand("brandp", "SV_p", "EMD_p", now), true)
	key := e.sharedKey(a)

	t.Run("an event for an unknown recipient stays pending until the recipient is synced", func(t *testing.T) {
		r := e.post(a.ID, completed+"SV_p", msg("SV_p", "R_new", "CID_new", "EMD_p", "brandp", "Complete", now), key, "")
		if r.status != http.StatusAccepted {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		// The worker has tried it and left it pending.
		if !waitFor(2*time.Second, func() bool {
			return e.count(`SELECT count(*) FROM qualtrics_events WHERE response_id = 'R_new' AND attempts > 0 AND applied_at IS NULL`) == 1
		}) {
			t.Fatal("the worker did not try the event")
		}
		tx, err := e.store.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := insertRecipient(ctx, tx, a.ID, "EMD_p", "SV_p", "CID_new", "MLRP_new", "new@brandp.example", "Success"); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		applied, err := e.svc.ReapplyPending(ctx, a.ID, time.Now())
		if err != nil || applied != 1 {
			t.Fatalf("reapply: %d applied (%v), want 1", applied, err)
		}
		if got := e.recipient(a.ID, "EMD_p", "CID_new"); got.Status != "SurveyFinished" || got.ResponseID != "R_new" {
			t.Fatalf("recipient = %+v, want finished with R_new", got)
		}
	})

	t.Run("an event pending for more than 24 hours is dropped", func(t *testing.T) {
		r := e.post(a.ID, completed+"SV_p", msg("SV_p", "R_never", "CID_never", "EMD_p", "brandp", "Complete", now), key, "")
		if r.status != http.StatusAccepted {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if applied, err := e.svc.ReapplyPending(ctx, a.ID, time.Now().Add(23*time.Hour)); err != nil || applied != 0 {
			t.Fatalf("reapply after 23 h: %d applied (%v)", applied, err)
		}
		if n := e.count(`SELECT count(*) FROM qualtrics_events WHERE response_id = 'R_never'`); n != 1 {
			t.Fatalf("the event is gone after 23 h")
		}
		if _, err := e.svc.ReapplyPending(ctx, a.ID, time.Now().Add(25*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n := e.count(`SELECT count(*) FROM qualtrics_events WHERE response_id = 'R_never'`); n != 0 {
			t.Fatalf("the event is still there after 25 h")
		}
		// The applied event is kept for the replay window, then purged too.
		if n := e.count(`SELECT count(*) FROM qualtrics_events WHERE response_id = 'R_new'`); n != 1 {
			t.Fatalf("the applied event was dropped early")
		}
		if _, err := e.svc.ReapplyPending(ctx, a.ID, time.Now().Add(8*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n := e.count(`SELECT count(*) FROM qualtrics_events`); n != 0 {
			t.Fatalf("%d events left after 8 days", n)
		}
	})
}

func TestCallbacksAreRateLimitedPerIntegration(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	e := newEnv(t, envOptions{options: events.Options{RatePerSecond: 0.001, Burst: 2}})
	a := e.addIntegration(simBrand("brandr", "SV_r", "EMD_r", now), true)
	b := e.addIntegration(simBrand("brandr2", "SV_r2", "EMD_r2", now), true)
	key := e.sharedKey(a)
	var got []int
	for i := range 3 {
		r := e.post(a.ID, completed+"SV_r", msg("SV_r", "R_"+string(rune('a'+i)), "CID_brandr1", "EMD_r", "brandr", "Complete", now), key, "")
		got = append(got, r.status)
		if r.status == http.StatusTooManyRequests && r.header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
	}
	if got[0] != 202 || got[1] != 202 || got[2] != http.StatusTooManyRequests {
		t.Fatalf("statuses %v, want 202, 202, 429", got)
	}
	// Another integration has its own budget.
	if r := e.post(b.ID, completed+"SV_r2", msg("SV_r2", "R_b", "CID_brandr21", "EMD_r2", "brandr2", "Complete", now), e.sharedKey(b), ""); r.status != http.StatusAccepted {
		t.Fatalf("the other integration got %d", r.status)
	}
}

// Issue 31, item 3: 1,500 forged callbacks to one integration's hook spent
// its budget (949 × 401, then 429), so Qualtrics' signed callbacks were
// refused during the flood. The signature is now checked first; failures are
// charged to a budget of their own per integration and source address.
func TestForgedCallbacksDoNotSpendTheIntegrationsBudget(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	e := newEnv(t, envOptions{})
	a := e.addIntegration(simBrand("brandf", "SV_f", "EMD_f", now), true)
	key := e.sharedKey(a)
	h := e.svc.Receiver()
	post := func(remote, msgJSON, sig string) *httptest.ResponseRecorder {
		form := url.Values{"Topic": {completed + "SV_f"}, "MSG": {msgJSON}, "HMAC": {sig}}
		req := httptest.NewRequest(http.MethodPost, "/hooks/qualtrics/"+a.ID, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	signed := func(i int) string {
		b, _ := json.Marshal(msg("SV_f", fmt.Sprintf("R_%d", i), "CID_brandf1", "EMD_f", "brandf", "Complete", now))
		return string(b)
	}
	const attacker, qualtricsAddr = "203.0.113.7:4444", "198.51.100.1:443"
	forged := map[int]int{}
	start := time.Now()
	for i := range 1500 {
		m := signed(100000 + i)
		e.secret(m)
		forged[post(attacker, m, strings.Repeat("0", 128)).Code]++
		if i%50 == 49 {
			from := qualtricsAddr
			if i%100 == 99 {
				from = attacker // a signed callback is never the failure budget's to refuse
			}
			m := signed(i)
			e.secret(m)
			if rec := post(from, m, qualtricssim.SignEvent(key, []byte(m))); rec.Code != http.StatusAccepted {
				t.Fatalf("signed callback %d from %s during the flood: %d %s", i, from, rec.Code, rec.Body)
			}
		}
	}
	elapsed := time.Since(start)
	if forged[http.StatusUnauthorized]+forged[http.StatusTooManyRequests] != 1500 {
		t.Fatalf("forged callbacks answered %v", forged)
	}
	if max401 := 20 + int(elapsed.Seconds()) + 1; forged[http.StatusUnauthorized] > max401 {
		t.Errorf("%d forged callbacks got 401 in %v, want at most %d (then 429)", forged[http.StatusUnauthorized], elapsed, max401)
	}
	// Another source has a budget of its own; an IPv6 /64 is one source.
	if rec := post("203.0.113.8:4444", signed(0), strings.Repeat("0", 128)); rec.Code != http.StatusUnauthorized {
		t.Errorf("a forged callback from another address: %d, want 401", rec.Code)
	}
	v6 := map[int]int{}
	for i := range 30 {
		v6[post(fmt.Sprintf("[2001:db8::%x]:443", i+1), signed(0), strings.Repeat("0", 128)).Code]++
	}
	if v6[http.StatusTooManyRequests] < 5 {
		t.Errorf("30 forged callbacks from 30 addresses of one /64: %v, want 429 after the budget", v6)
	}
	if n := e.count(`SELECT count(*) FROM qualtrics_events WHERE integration_id = $1`, a.ID); n != 30 {
		t.Errorf("%d events stored, want the 30 signed ones", n)
	}
}
