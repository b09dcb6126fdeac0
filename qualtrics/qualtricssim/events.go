package qualtricssim

import (
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Subscription is an event subscription registered through POST /eventsubscriptions.
type Subscription struct {
	ID              string // SUB_…
	BrandID         string
	PublicationURL  string
	Topics          []string // exact topics, or a prefix ending in ".*"
	Encrypt         bool     // stored and echoed; payloads are never encrypted (not simulated)
	SharedKey       string
	SuccessfulCalls int
}

type subscription struct {
	Subscription
	brand *brandState
}

func (sub *subscription) matches(topic string) bool {
	for _, t := range sub.Topics {
		if t == topic || (strings.HasSuffix(t, ".*") && strings.HasPrefix(topic, strings.TrimSuffix(t, "*"))) {
			return true
		}
	}
	return false
}

func (s *Server) createSubscription(r *http.Request, c *call) (any, *apiError) {
	if !c.admin() {
		return nil, &apiError{http.StatusForbidden, "MSTC_3", "Only Brand Administrators may manage event subscriptions."}
	}
	var body struct {
		PublicationURL string `json:"publicationUrl"`
		Topics         string `json:"topics"`
		Encrypt        bool   `json:"encrypt"`
		SharedKey      string `json:"sharedKey"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		return nil, &apiError{http.StatusBadRequest, "ESS_1", "Invalid request body."}
	}
	u, err := url.Parse(body.PublicationURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.TrimSpace(body.Topics) == "" {
		return nil, &apiError{http.StatusBadRequest, "ESS_2", "publicationUrl and topics are required."}
	}
	var topics []string
	for _, t := range strings.Split(body.Topics, ",") {
		if t = strings.TrimSpace(t); t != "" {
			topics = append(topics, t)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := &subscription{Subscription: Subscription{
		ID: newID(s.ids, "SUB_"), BrandID: c.brand.info.ID, PublicationURL: body.PublicationURL,
		Topics: topics, Encrypt: body.Encrypt, SharedKey: body.SharedKey,
	}, brand: c.brand}
	s.subs[sub.ID] = sub
	return map[string]string{"id": sub.ID}, nil
}

func wireSub(sub *subscription) map[string]any {
	return map[string]any{
		"id": sub.ID, "scope": sub.BrandID, "topics": strings.Join(sub.Topics, ","),
		"publicationUrl": sub.PublicationURL, "encrypted": sub.Encrypt, "successfulCalls": sub.SuccessfulCalls,
	}
}

func (s *Server) listSubscriptions(_ *http.Request, c *call) (any, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []map[string]any{}
	for _, sub := range s.subscriptionsOf(c.brand) {
		out = append(out, wireSub(sub))
	}
	return list{Elements: out}, nil
}

func (s *Server) subscriptionsOf(b *brandState) []*subscription {
	var out []*subscription
	for _, sub := range s.subs {
		if sub.brand == b {
			out = append(out, sub)
		}
	}
	// map order is random; ids sort stably enough for humans and tests
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].ID < out[j-1].ID; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func (s *Server) getSubscription(r *http.Request, c *call) (any, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id := r.PathValue("id")
	sub := s.subs[id]
	if sub == nil || sub.brand != c.brand {
		return nil, &apiError{http.StatusNotFound, "ESSG_2", id + " not found"}
	}
	return wireSub(sub), nil
}

func (s *Server) deleteSubscription(r *http.Request, c *call) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := r.PathValue("id")
	sub := s.subs[id]
	if sub == nil || sub.brand != c.brand {
		return nil, &apiError{http.StatusNotFound, "ESSG_2", id + " not found"}
	}
	delete(s.subs, id)
	return nil, nil
}

// Subscriptions returns the event subscriptions of a brand.
func (s *Server) Subscriptions(brandID string) []Subscription {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := s.brandByID[brandID]
	if b == nil {
		return nil
	}
	var out []Subscription
	for _, sub := range s.subscriptionsOf(b) {
		cp := sub.Subscription
		cp.Topics = append([]string(nil), sub.Topics...)
		out = append(out, cp)
	}
	return out
}

// EventMessage is the MSG of a survey-engine event callback.
type EventMessage struct {
	SurveyID       string
	ResponseID     string
	RecipientID    string
	DistributionID string
	CompletedDate  string
	BrandID        string
	Status         string
}

// EventResult is the outcome of one callback.
type EventResult struct {
	SubscriptionID string
	Topic          string
	URL            string
	StatusCode     int   // 0 when the request failed
	Err            error // transport error, timeout, or a non-2xx answer
}

// Delivery tracks the callbacks one change triggered. They run in the background so a test's
// receiver can block without deadlocking the simulator; Wait makes them observable.
type Delivery struct {
	done    chan struct{}
	mu      sync.Mutex
	results []EventResult
}

// Wait blocks until every callback finished (each is bounded by the event timeout) and returns
// their outcomes; none when no subscription matched.
func (d *Delivery) Wait() []EventResult {
	<-d.done
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]EventResult(nil), d.results...)
}

// Done is closed when every callback finished.
func (d *Delivery) Done() <-chan struct{} { return d.done }

// eventTopic is the survey-engine topic a new history status announces, if any.
func eventTopic(status, surveyID string) string {
	switch status {
	case StatusSurveyStarted:
		return "surveyengine.startedRecipientSession." + surveyID
	case StatusSurveyPartiallyFinished:
		return "surveyengine.partialResponse." + surveyID
	case StatusSurveyFinished:
		return "surveyengine.completedResponse." + surveyID
	}
	return ""
}

type pendingEvent struct {
	sub   Subscription
	topic string
	msg   []byte
}

// eventsFor lists the callbacks for a topic; the caller holds s.mu.
func (s *Server) eventsFor(b *brandState, topic string, msg EventMessage) []pendingEvent {
	if topic == "" {
		return nil
	}
	body, _ := json.Marshal(msg)
	var out []pendingEvent
	for _, sub := range s.subscriptionsOf(b) {
		if sub.matches(topic) {
			out = append(out, pendingEvent{sub: sub.Subscription, topic: topic, msg: body})
		}
	}
	return out
}

// deliver posts events in the background, form-encoded like Qualtrics: Topic, MSG and HMAC, the
// hex HMAC-SHA512 of MSG keyed with the subscription's shared key.
func (s *Server) deliver(events []pendingEvent) *Delivery {
	d := &Delivery{done: make(chan struct{})}
	if len(events) == 0 {
		close(d.done)
		return d
	}
	var wg sync.WaitGroup
	for _, ev := range events {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := s.post(ev)
			d.mu.Lock()
			d.results = append(d.results, res)
			d.mu.Unlock()
			if res.Err == nil {
				s.mu.Lock()
				if sub := s.subs[ev.sub.ID]; sub != nil {
					sub.SuccessfulCalls++
				}
				s.mu.Unlock()
			}
		}()
	}
	go func() {
		wg.Wait()
		close(d.done)
	}()
	return d
}

// SignEvent returns the HMAC a callback carries for msg, for receivers under test to compare.
func SignEvent(sharedKey string, msg []byte) string {
	m := hmac.New(sha512.New, []byte(sharedKey))
	m.Write(msg)
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) post(ev pendingEvent) EventResult {
	res := EventResult{SubscriptionID: ev.sub.ID, Topic: ev.topic, URL: ev.sub.PublicationURL}
	form := url.Values{"Topic": {ev.topic}, "MSG": {string(ev.msg)}, "HMAC": {SignEvent(ev.sub.SharedKey, ev.msg)}}
	ctx, cancel := context.WithTimeout(context.Background(), s.eventTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ev.sub.PublicationURL, strings.NewReader(form.Encode()))
	if err != nil {
		res.Err = err
		return res
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.eventClient.Do(req)
	if err != nil {
		res.Err = err
		return res
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	res.StatusCode = resp.StatusCode
	if resp.StatusCode/100 != 2 {
		res.Err = fmt.Errorf("qualtricssim: event callback answered %d", resp.StatusCode)
	}
	return res
}

func eventTime(t time.Time) string { return t.UTC().Format(timeSec) }
