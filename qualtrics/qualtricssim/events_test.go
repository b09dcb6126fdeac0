package qualtricssim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func createSubscription(t *testing.T, f *fixture, token, hook, topics, key string) response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"publicationUrl": hook, "topics": topics, "encrypt": false, "sharedKey": key})
	h := http.Header{"X-Api-Token": {token}, "Content-Type": {"application/json"}}
	return do(t, http.MethodPost, f.http.URL+"/API/v3/eventsubscriptions", h, strings.NewReader(string(body)))
}

type received struct {
	topic, hmac string
	msg         []byte
}

func receiver(t *testing.T, delay time.Duration) (*httptest.Server, func() []received) {
	t.Helper()
	var mu sync.Mutex
	var got []received
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-release:
			}
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		got = append(got, received{r.PostForm.Get("Topic"), r.PostForm.Get("HMAC"), []byte(r.PostForm.Get("MSG"))})
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first, so Close does not wait for the slow handler
	return srv, func() []received {
		mu.Lock()
		defer mu.Unlock()
		return append([]received(nil), got...)
	}
}

func pendingDistribution(t *testing.T, f *fixture, n int) (Distribution, []Recipient) {
	t.Helper()
	sv := f.sim.Surveys(f.brand.ID)[0]
	rs := make([]Recipient, n)
	for i := range rs {
		rs[i] = Recipient{Email: "p" + string(rune('a'+i)) + "@example.com", FirstName: "Zoë", LastName: "Müller"}
	}
	d, err := f.sim.AddDistribution(Distribution{SurveyID: sv.ID, SendDate: testNow, LinkExpiration: testNow.Add(72 * time.Hour), Recipients: rs})
	if err != nil {
		t.Fatal(err)
	}
	return d, f.sim.Recipients(d.ID)
}

func TestEventSubscriptions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Spec{Surveys: 1, Recipients: 10}, func(o *Options) { o.EventTimeout = 300 * time.Millisecond })
	d, rs := pendingDistribution(t, f, 4)
	hook, got := receiver(t, 0)

	r := createSubscription(t, f, f.adminToken(), hook.URL, "surveyengine.completedResponse."+d.SurveyID+",surveyengine.startedRecipientSession.*", "s3cret")
	if r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	subID := r.envelope(t)["result"].(map[string]any)["id"].(string)

	t.Run("a user token cannot subscribe", func(t *testing.T) {
		if r := createSubscription(t, f, f.userToken(), hook.URL, "controlpanel.activateSurvey", "k"); r.status != 403 {
			t.Errorf("status %d, want 403", r.status)
		}
	})
	t.Run("a finished response posts a signed completedResponse event", func(t *testing.T) {
		del, err := f.sim.SetRecipientStatus(d.ID, rs[0].ContactID, StatusSurveyFinished, testNow.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		res := del.Wait()
		if len(res) != 1 || res[0].Err != nil || res[0].StatusCode != 200 {
			t.Fatalf("results %+v", res)
		}
		ev := got()
		if len(ev) != 1 || ev[0].topic != "surveyengine.completedResponse."+d.SurveyID {
			t.Fatalf("received %+v", ev)
		}
		if ev[0].hmac != SignEvent("s3cret", ev[0].msg) {
			t.Error("HMAC does not verify with the shared key")
		}
		var msg map[string]string
		if err := json.Unmarshal(ev[0].msg, &msg); err != nil {
			t.Fatal(err)
		}
		rc := f.sim.Recipients(d.ID)[0]
		want := map[string]string{
			"SurveyID": d.SurveyID, "ResponseID": rc.ResponseID, "RecipientID": rc.ContactID, "DistributionID": d.ID,
			"CompletedDate": "2025-06-02T10:30:00Z", "BrandID": f.brand.ID, "Status": "Complete",
		}
		for k, v := range want {
			if msg[k] != v || v == "" {
				t.Errorf("MSG %s = %q, want %q", k, msg[k], v)
			}
		}
	})
	t.Run("a started session matches a wildcard topic", func(t *testing.T) {
		del, _ := f.sim.SetRecipientStatus(d.ID, rs[1].ContactID, StatusSurveyStarted, testNow)
		if res := del.Wait(); len(res) != 1 || res[0].Topic != "surveyengine.startedRecipientSession."+d.SurveyID {
			t.Fatalf("results %+v", res)
		}
	})
	t.Run("an opened email posts nothing", func(t *testing.T) {
		del, _ := f.sim.SetRecipientStatus(d.ID, rs[2].ContactID, StatusOpened, testNow)
		if res := del.Wait(); len(res) != 0 {
			t.Fatalf("results %+v", res)
		}
	})
	t.Run("the subscription can be read and deleted", func(t *testing.T) {
		res := f.get(t, "eventsubscriptions/"+subID, f.adminToken()).envelope(t)["result"].(map[string]any)
		if res["publicationUrl"] != hook.URL || res["successfulCalls"].(float64) < 1 {
			t.Errorf("subscription %v", res)
		}
		h := http.Header{"X-Api-Token": {f.adminToken()}}
		if r := do(t, http.MethodDelete, f.http.URL+"/API/v3/eventsubscriptions/"+subID, h, nil); r.status != 200 {
			t.Fatalf("delete: %d", r.status)
		}
		r := f.get(t, "eventsubscriptions/"+subID, f.adminToken())
		if r.status != 404 || r.errorCode(t) != "ESSG_2" {
			t.Errorf("after delete: %d %s", r.status, r.body)
		}
		del, _ := f.sim.SetRecipientStatus(d.ID, rs[3].ContactID, StatusSurveyFinished, testNow)
		if res := del.Wait(); len(res) != 0 {
			t.Errorf("deleted subscription still called: %+v", res)
		}
	})
}

func TestEventDeliveryIsBoundedByTheTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Spec{Surveys: 1, Recipients: 10}, func(o *Options) { o.EventTimeout = 100 * time.Millisecond })
	d, rs := pendingDistribution(t, f, 1)
	slow, _ := receiver(t, 5*time.Second)
	if r := createSubscription(t, f, f.adminToken(), slow.URL, "surveyengine.completedResponse."+d.SurveyID, "k"); r.status != 200 {
		t.Fatal(r.status)
	}
	start := time.Now()
	del, _ := f.sim.SetRecipientStatus(d.ID, rs[0].ContactID, StatusSurveyFinished, testNow)
	res := del.Wait()
	if len(res) != 1 || res[0].Err == nil {
		t.Fatalf("results %+v, want one timeout", res)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("delivery took %v", time.Since(start))
	}
}

func TestOAuthClientCredentials(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Spec{Surveys: 1, Recipients: 5}, func(o *Options) { o.AccessTokenTTL = 10 * time.Minute })
	c := f.brand.OAuthClients[0]
	token := func(t *testing.T, id, secret string) response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "/", nil)
		req.SetBasicAuth(id, secret)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"read:surveys read:distributions"}}
		return do(t, http.MethodPost, f.http.URL+"/oauth2/token", req.Header, strings.NewReader(form.Encode()))
	}
	bearer := func(t *testing.T, tok string) int {
		t.Helper()
		return do(t, http.MethodGet, f.http.URL+"/API/v3/whoami", http.Header{"Authorization": {"Bearer " + tok}}, nil).status
	}
	issue := func(t *testing.T) string {
		t.Helper()
		r := token(t, c.ClientID, c.ClientSecret)
		var body struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
			ExpiresIn   int    `json:"expires_in"`
			Scope       string `json:"scope"`
		}
		if r.status != 200 || json.Unmarshal(r.body, &body) != nil {
			t.Fatalf("token: %d %s", r.status, r.body)
		}
		if body.TokenType != "Bearer" || body.ExpiresIn != 600 || body.Scope != "read:surveys read:distributions" || body.AccessToken == "" {
			t.Fatalf("token answer %+v", body)
		}
		return body.AccessToken
	}
	t.Run("an access token authenticates API calls as the client's user", func(t *testing.T) {
		tok := issue(t)
		r := do(t, http.MethodGet, f.http.URL+"/API/v3/whoami", http.Header{"Authorization": {"Bearer " + tok}}, nil)
		if r.status != 200 || r.envelope(t)["result"].(map[string]any)["userId"] != c.UserID {
			t.Fatalf("whoami %d %s", r.status, r.body)
		}
	})
	t.Run("a wrong secret gets no token", func(t *testing.T) {
		if r := token(t, c.ClientID, "wrong"); r.status != 401 || !strings.Contains(string(r.body), "invalid_client") {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("an access token stops working when it expires", func(t *testing.T) {
		tok := issue(t)
		f.clock.Add(11 * time.Minute)
		if s := bearer(t, tok); s != 401 {
			t.Fatalf("expired token: %d", s)
		}
		if s := bearer(t, issue(t)); s != 200 {
			t.Fatalf("fresh token: %d", s)
		}
	})
	t.Run("ExpireAccessTokens expires tokens mid-sync", func(t *testing.T) {
		tok := issue(t)
		f.sim.ExpireAccessTokens()
		if s := bearer(t, tok); s != 401 {
			t.Fatalf("status %d", s)
		}
	})
	t.Run("a revoked client gets no token and its tokens stop working", func(t *testing.T) {
		tok := issue(t)
		if err := f.sim.RevokeClient(c.ClientID); err != nil {
			t.Fatal(err)
		}
		if s := bearer(t, tok); s != 401 {
			t.Errorf("bearer after revoke: %d", s)
		}
		if r := token(t, c.ClientID, c.ClientSecret); r.status != 401 {
			t.Errorf("token after revoke: %d", r.status)
		}
		_ = f.sim.RestoreClient(c.ClientID)
		if s := bearer(t, tok); s != 200 {
			t.Errorf("bearer after restore: %d", s)
		}
	})
}
